package qemu

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// canaryMessage is what the canary boot sector prints on the serial port.
const canaryMessage = "trustack-canary\n"

// canaryBootSector is a BIOS boot sector that writes canaryMessage to the
// first serial port and halts:
//
//	xor ax, ax; mov ds, ax; mov dx, 0x3f8; mov si, 0x7c15
//	loop: lodsb; test al, al; jz done; out dx, al; jmp loop
//	done: hlt; jmp done
//	0x7c15: canaryMessage, 0
func canaryBootSector() []byte {
	code := []byte{
		0x31, 0xc0, 0x8e, 0xd8, 0xba, 0xf8, 0x03, 0xbe, 0x15, 0x7c,
		0xac, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8,
		0xf4, 0xeb, 0xfd,
	}
	sector := make([]byte, 512)
	copy(sector, code)
	copy(sector[len(code):], canaryMessage)
	sector[510], sector[511] = 0x55, 0xaa
	return sector
}

// canary boots the canary boot sector under the acceleration and reports
// whether it printed its message within the timeout. Under KVM it asks
// for the host's CPU, as the driver's guests do: where KVM is only
// paravirtual and cannot run standard guests, QEMU refuses that CPU.
func canary(ctx context.Context, binary, accel string, timeout time.Duration) error {
	dir, err := os.MkdirTemp("", "trustack-canary-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	disk := filepath.Join(dir, "canary.img")
	if err := os.WriteFile(disk, canaryBootSector(), 0o600); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := []string{"-accel", accel, "-machine", "pc", "-m", "16", "-nodefaults", "-no-user-config", "-display", "none",
		"-drive", "file=" + disk + ",format=raw,if=ide", "-serial", "stdio"}
	if accel == "kvm" {
		args = append(args, "-cpu", "host")
	}
	cmd := exec.CommandContext(ctx, binary, args...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			if bytes.Contains(out.Bytes(), []byte(canaryMessage)) {
				return nil
			}
			return fmt.Errorf("QEMU exited (%v): %s", err, bytes.TrimSpace(out.Bytes()))
		case <-tick.C:
			if bytes.Contains(out.Bytes(), []byte(canaryMessage)) {
				cmd.Process.Kill()
				<-exited
				return nil
			}
		case <-ctx.Done():
			<-exited
			return fmt.Errorf("no output within %v", timeout)
		}
	}
}

// chooseAccel returns the acceleration to run guests with: kvm or tcg as
// configured, or for auto KVM where a canary boots under it within the
// timeout, and TCG otherwise, with the reason.
func chooseAccel(ctx context.Context, binary, accel string, timeout time.Duration) (string, string) {
	switch accel {
	case "kvm", "tcg":
		return accel, "as configured"
	}
	if _, err := os.Stat("/dev/kvm"); err != nil {
		return "tcg", "no /dev/kvm"
	}
	if err := canary(ctx, binary, "kvm", timeout); err != nil {
		return "tcg", "a canary guest did not boot under KVM: " + err.Error()
	}
	return "kvm", "a canary guest booted under KVM"
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Bytes returns a copy of what was written.
func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
