package dcc

import (
	"bytes"
	"crypto"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/trustack/trustack/ima"
	"github.com/trustack/trustack/tpm"
)

// measurer is the userspace measurer with what it needs between agent
// restarts: its log, kept in a file with the boot it belongs to (the
// TPM's PCR 10 holds its extends until the TPM resets), and what it last
// saw of each file, to measure only files that changed.
type measurer struct {
	m        *ima.Measurer
	path     string // the saved log
	boot     uint32
	patterns []string
	seen     map[string]fileStamp
}

// fileStamp is what tells that a file may have changed.
type fileStamp struct {
	size    int64
	modTime time.Time
	inode   any
}

// openMeasurer continues the log saved at path if it belongs to this boot,
// or starts one with the boot aggregate of PCRs 0 to 9.
func openMeasurer(t *tpm.TPM, path string, boot uint32, patterns []string) (*measurer, error) {
	cfg := ima.MeasurerConfig{Extender: t}
	saved, err := os.ReadFile(path)
	switch {
	case err == nil && len(saved) >= 4 && binary.BigEndian.Uint32(saved) == boot:
		if cfg.Resume, err = ima.ParseBinary(saved[4:]); err != nil {
			return nil, fmt.Errorf("dcc: saved measurements %s: %w", path, err)
		}
	case err == nil || errors.Is(err, fs.ErrNotExist):
		pcrs, err := t.ReadPCRs(tpm.PCRSelection{Hash: crypto.SHA256, PCRs: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}})
		if err != nil {
			return nil, err
		}
		for i := range 10 {
			cfg.BootPCRs = append(cfg.BootPCRs, pcrs.Values[i])
		}
	default:
		return nil, fmt.Errorf("dcc: saved measurements: %w", err)
	}
	m, err := ima.NewMeasurer(cfg)
	if err != nil {
		return nil, err
	}
	ms := &measurer{m: m, path: path, boot: boot, patterns: patterns, seen: map[string]fileStamp{}}
	return ms, ms.save()
}

// measure measures the files that are new or changed since last seen,
// and returns how many entries it added (a file back to content measured
// before adds none, as with the kernel's IMA).
func (ms *measurer) measure() (int, error) {
	var files []string
	var errs []error
	for _, p := range ms.patterns {
		matches, err := filepath.Glob(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("pattern %q: %w", p, err))
		}
		files = append(files, matches...)
	}
	slices.Sort(files)
	added := 0
	for _, f := range slices.Compact(files) {
		fi, err := os.Stat(f)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		stamp := fileStamp{size: fi.Size(), modTime: fi.ModTime(), inode: inode(fi)}
		if ms.seen[f] == stamp {
			continue
		}
		_, ok, err := ms.m.Measure(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ms.seen[f] = stamp
		if ok {
			added++
		}
	}
	if added > 0 {
		if err := ms.save(); err != nil {
			errs = append(errs, err)
		}
	}
	return added, errors.Join(errs...)
}

// save writes the log with its boot, atomically.
func (ms *measurer) save() error {
	var buf bytes.Buffer
	binary.Write(&buf, binary.BigEndian, ms.boot)
	if err := ms.m.WriteBinary(&buf, 0); err != nil {
		return err
	}
	tmp := ms.path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("dcc: save measurements: %w", err)
	}
	return os.Rename(tmp, ms.path)
}
