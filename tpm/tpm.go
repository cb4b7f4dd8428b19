// Package tpm is trustack's access to TPM 2.0, for the compute host agent
// (the DC-C) and the attestation verifier (the DC-S). On the agent's side a
// TPM, hardware through /dev/tpmrm0 or swtpm over TCP, gives the
// endorsement key and its certificate, an attestation key kept across
// restarts, credential activation, quotes over the boot and IMA PCRs, PCR
// reads and extends for the userspace measurer, and keys usable only while
// the boot PCRs keep their values. On the verifier's side, pure Go with no
// TPM: MakeCredential to an endorsement key, the check of an attestation
// key's attributes, of an EK certificate's chain, and of a quote.
//
// For development and tests it also manufactures swtpm instances with EK
// certificates from a local CA (Manufacture) and runs them (Start).
//
// It is built on github.com/google/go-tpm's tpm2 ("TPMDirect") API. A TPM
// has few object slots (swtpm three), so every operation loads what it
// needs and flushes it before returning: no handle outlives a method call.
package tpm

import (
	"crypto"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"

	"github.com/trustack/trustack"
)

// DefaultDevice is the kernel's TPM resource manager, which lets several
// processes share the TPM and flushes what a crashed one left loaded.
const DefaultDevice = "/dev/tpmrm0"

// commandTimeout bounds one TPM command over TCP. Hardware TPMs take
// seconds to generate an RSA key; swtpm takes milliseconds.
const commandTimeout = time.Minute

// TPM is an open TPM 2.0. It is safe for concurrent use: its methods
// run one at a time, each a short sequence of TPM commands that leaves
// nothing loaded in the TPM.
type TPM struct {
	mu   sync.Mutex
	tpm  transport.TPMCloser
	ctrl net.Conn // swtpm's control channel; nil for a device
}

// Open opens the TPM named by addr: a device path such as
// /dev/tpmrm0 (DefaultDevice), or an swtpm instance as
// "swtpm:COMMAND,CONTROL", its command and control TCP addresses, as
// returned by Start. Errors are unavailable when the TPM cannot be
// reached, invalid when addr is malformed.
func Open(addr string) (*TPM, error) {
	if rest, ok := strings.CutPrefix(addr, "swtpm:"); ok {
		cmd, ctl, ok := strings.Cut(rest, ",")
		if !ok || cmd == "" || ctl == "" {
			return nil, trustack.Errorf(trustack.EINVALID, "tpm: swtpm address %q is not swtpm:COMMAND,CONTROL", addr)
		}
		return OpenSwtpm(cmd, ctl)
	}
	if !strings.HasPrefix(addr, "/") {
		return nil, trustack.Errorf(trustack.EINVALID, "tpm: %q is neither a device path nor swtpm:COMMAND,CONTROL", addr)
	}
	return OpenDevice(addr)
}

// OpenDevice opens a kernel TPM device, normally DefaultDevice.
func OpenDevice(path string) (*TPM, error) {
	t, err := linuxtpm.Open(path)
	if err != nil {
		return nil, trustack.Errorf(trustack.EUNAVAILABLE, "tpm: open %s: %v", path, err)
	}
	return &TPM{tpm: retrying{t}}, nil
}

// OpenSwtpm connects to swtpm's command port and control port. swtpm's
// control channel speaks swtpm's own protocol, not the TCG simulator's
// platform commands that go-tpm's tcp transport sends to power the TPM on,
// so this package talks to it itself: if the TPM has not been initialised
// (swtpm started without --flags not-need-init) it is, and if it has not
// been started up, TPM2_Startup(CLEAR) is sent. A TPM already running is
// left as it is, PCRs included. swtpm serves one connection at a time: a
// second TPM opened on it waits for the first to be closed.
func OpenSwtpm(commandAddr, controlAddr string) (*TPM, error) {
	ctrl, err := net.DialTimeout("tcp", controlAddr, 5*time.Second)
	if err != nil {
		return nil, trustack.Errorf(trustack.EUNAVAILABLE, "tpm: swtpm control channel: %v", err)
	}
	conn, err := net.DialTimeout("tcp", commandAddr, 5*time.Second)
	if err != nil {
		ctrl.Close()
		return nil, trustack.Errorf(trustack.EUNAVAILABLE, "tpm: swtpm command channel: %v", err)
	}
	t := &TPM{tpm: retrying{&streamTransport{conn: conn}}, ctrl: ctrl}
	if err := t.startup(); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// Close closes the connection to the TPM; the TPM itself keeps running.
func (t *TPM) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	err := t.tpm.Close()
	if t.ctrl != nil {
		err = errors.Join(err, t.ctrl.Close())
	}
	return err
}

// startup brings a freshly started or initialised swtpm to the point
// where it accepts commands.
func (t *TPM) startup() error {
	_, err := tpm2.ReadClock{}.Execute(t.tpm)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, tpm2.TPMRCFailure):
		// Not initialised: swtpm answers every command with a failure
		// until it receives CMD_INIT on its control channel.
		if err := t.swtpmInit(); err != nil {
			return err
		}
	case !errors.Is(err, tpm2.TPMRCInitialize):
		return unavailable("read the TPM's clock", err)
	}
	if _, err := (tpm2.Startup{StartupType: tpm2.TPMSUClear}).Execute(t.tpm); err != nil {
		return unavailable("TPM2_Startup", err)
	}
	return nil
}

// swtpm's control channel commands and flags (swtpm's tpm_ioctl.h).
const (
	swtpmCmdInit       = 0x02
	swtpmInitFlagsNone = 0
)

// swtpmInit sends CMD_INIT, swtpm's power-on: the TPM restarts as after a
// power cycle and waits for TPM2_Startup.
func (t *TPM) swtpmInit() error {
	var req [8]byte
	binary.BigEndian.PutUint32(req[0:], swtpmCmdInit)
	binary.BigEndian.PutUint32(req[4:], swtpmInitFlagsNone)
	t.ctrl.SetDeadline(time.Now().Add(commandTimeout))
	if _, err := t.ctrl.Write(req[:]); err != nil {
		return trustack.Errorf(trustack.EUNAVAILABLE, "tpm: swtpm CMD_INIT: %v", err)
	}
	var res [4]byte
	if _, err := io.ReadFull(t.ctrl, res[:]); err != nil {
		return trustack.Errorf(trustack.EUNAVAILABLE, "tpm: swtpm CMD_INIT: %v", err)
	}
	if rc := binary.BigEndian.Uint32(res[:]); rc != 0 {
		return trustack.Errorf(trustack.EUNAVAILABLE, "tpm: swtpm CMD_INIT returned 0x%x", rc)
	}
	return nil
}

// PowerCycle reboots an swtpm TPM as a host reboot would: an orderly
// TPM2_Shutdown, a power-on through swtpm's control channel and
// TPM2_Startup(CLEAR). The PCRs return to their initial values and the
// reset count of later quotes is one higher. It is for tests and
// simulated hosts; on a hardware TPM it returns an invalid error.
func (t *TPM) PowerCycle() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctrl == nil {
		return trustack.Errorf(trustack.EINVALID, "tpm: only an swtpm TPM can be power-cycled")
	}
	if _, err := (tpm2.Shutdown{ShutdownType: tpm2.TPMSUClear}).Execute(t.tpm); err != nil {
		return unavailable("TPM2_Shutdown", err)
	}
	if err := t.swtpmInit(); err != nil {
		return err
	}
	if _, err := (tpm2.Startup{StartupType: tpm2.TPMSUClear}).Execute(t.tpm); err != nil {
		return unavailable("TPM2_Startup", err)
	}
	return nil
}

// retrying resends a command the TPM answered with TPM_RC_RETRY,
// TPM_RC_YIELDED or TPM_RC_TESTING: it did not run it, and asks for it
// again, as tpm2-tss does. The command's bytes, sessions included, are
// still valid, as nothing happened.
type retrying struct {
	transport.TPMCloser
}

// Send implements transport.TPM.
func (r retrying) Send(cmd []byte) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		rsp, err := r.TPMCloser.Send(cmd)
		if err != nil || len(rsp) < tpmHeaderSize || attempt == 20 {
			return rsp, err
		}
		switch tpm2.TPMRC(binary.BigEndian.Uint32(rsp[6:10])) {
		case tpm2.TPMRCRetry, tpm2.TPMRCYielded, tpm2.TPMRCTesting:
			time.Sleep(time.Duration(attempt+1) * time.Millisecond)
		default:
			return rsp, nil
		}
	}
}

// streamTransport sends raw TPM 2.0 commands over a stream, as swtpm's
// command port accepts them besides the TCG simulator's framing. Unlike
// go-tpm's tcp transport it reads whole responses (io.ReadFull, not a
// single Read) and bounds each command with a deadline.
type streamTransport struct {
	conn net.Conn
}

// tpmHeaderSize is the size of a command or response header: tag
// (2 bytes), size (4), command or response code (4).
const tpmHeaderSize = 10

// maxResponseSize bounds what a misbehaving peer can make us allocate;
// TPM responses are a few KiB.
const maxResponseSize = 1 << 20

// Send implements transport.TPM.
func (s *streamTransport) Send(cmd []byte) ([]byte, error) {
	if err := s.conn.SetDeadline(time.Now().Add(commandTimeout)); err != nil {
		return nil, err
	}
	if _, err := s.conn.Write(cmd); err != nil {
		return nil, fmt.Errorf("send TPM command: %w", err)
	}
	rsp := make([]byte, tpmHeaderSize)
	if _, err := io.ReadFull(s.conn, rsp); err != nil {
		return nil, fmt.Errorf("read TPM response: %w", err)
	}
	size := binary.BigEndian.Uint32(rsp[2:6])
	if size < tpmHeaderSize || size > maxResponseSize {
		return nil, fmt.Errorf("read TPM response: size %d out of range", size)
	}
	rsp = append(rsp, make([]byte, size-tpmHeaderSize)...)
	if _, err := io.ReadFull(s.conn, rsp[tpmHeaderSize:]); err != nil {
		return nil, fmt.Errorf("read TPM response: %w", err)
	}
	return rsp, nil
}

// Close implements io.Closer.
func (s *streamTransport) Close() error { return s.conn.Close() }

// unavailable wraps a failed TPM command. Errors of the TPM itself (a
// response code) mean the request cannot be served and are internal; the
// others are transport failures, the TPM being unreachable.
func unavailable(what string, err error) error {
	var rc tpm2.TPMRC
	if errors.As(err, &rc) {
		return fmt.Errorf("tpm: %s: %w", what, err)
	}
	return fmt.Errorf("tpm: %s: %w", what, trustack.Errorf(trustack.EUNAVAILABLE, "the TPM is unreachable: %v", err))
}

// isTPMError reports whether err is the TPM's refusal of a command (a
// response code), not a failure to reach it; warnings, which mean
// "try again later", are not refusals.
func isTPMError(err error) bool {
	var rc tpm2.TPMRC
	return errors.As(err, &rc) && !rc.IsWarning()
}

// flush unloads a transient object or session. Errors are ignored: a
// flush fails only if the handle is gone already, or the TPM is, which the
// caller learns from its own commands.
func (t *TPM) flush(h tpm2.TPMHandle) {
	tpm2.FlushContext{FlushHandle: h}.Execute(t.tpm)
}

// tpmHash returns the TPM algorithm of a hash.
func tpmHash(h crypto.Hash) (tpm2.TPMAlgID, error) {
	switch h {
	case crypto.SHA1:
		return tpm2.TPMAlgSHA1, nil
	case crypto.SHA256:
		return tpm2.TPMAlgSHA256, nil
	case crypto.SHA384:
		return tpm2.TPMAlgSHA384, nil
	case crypto.SHA512:
		return tpm2.TPMAlgSHA512, nil
	}
	return 0, trustack.Errorf(trustack.EINVALID, "tpm: unsupported hash %v", h)
}

// goHash returns the Go hash of a TPM algorithm.
func goHash(alg tpm2.TPMAlgID) (crypto.Hash, error) {
	switch alg {
	case tpm2.TPMAlgSHA1:
		return crypto.SHA1, nil
	case tpm2.TPMAlgSHA256:
		return crypto.SHA256, nil
	case tpm2.TPMAlgSHA384:
		return crypto.SHA384, nil
	case tpm2.TPMAlgSHA512:
		return crypto.SHA512, nil
	}
	return 0, trustack.Errorf(trustack.EINVALID, "tpm: unsupported hash algorithm 0x%x", uint16(alg))
}
