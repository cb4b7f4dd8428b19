package lvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The LVM backend needs device-mapper, which the kernel of the machines
// that run trustack's tests lacks. TestInGuest runs this package's other
// tests in a storage host that has it: a QEMU guest booted with Debian's
// kernel, whose initramfs (scripts/build-lvm-guest) has lvm2 and this
// package's test program. There, TestMain makes the volume group
// trustack-volumes on a loop device it makes, for the tests that need no
// group of their own, and removes both after them; the others make and
// remove theirs the same way.

// guestFlag, on the kernel command line, marks the storage host guest.
const guestFlag = "trustack.lvm_guest"

// guestDir is where scripts/build-lvm-guest puts the guest.
const guestDir = "../../build/lvm-guest"

// inGuest reports whether the test runs in the storage host guest.
func inGuest() bool {
	cmdline, err := os.ReadFile("/proc/cmdline")
	return err == nil && slices.Contains(strings.Fields(string(cmdline)), guestFlag)
}

// guestOnly skips a test outside the storage host guest, where
// TestInGuest runs it.
func guestOnly(t testing.TB) {
	t.Helper()
	if !inGuest() {
		t.Skip("needs device-mapper: runs in the storage host guest (TestInGuest)")
	}
}

// TestInGuest boots the storage host guest under QEMU with this package's
// tests, which run there on volume groups of loop devices, and fails with
// what they printed unless they all pass. The storage host's sides of
// volumes served to a guest over NBD run there only as
// TestGuestWritesToAVolumeOverNBD and BenchmarkCreateAndAttach run them.
func TestInGuest(t *testing.T) {
	if inGuest() {
		t.Skip("in the guest already")
	}
	kernel, initrd := storageHostGuest(t)

	// KVM here is no help (see DESIGN.md): TCG, on two threads. The
	// arguments after "--" are the test program's.
	ctx, cancel := context.WithTimeout(t.Context(), 7*time.Minute)
	defer cancel()
	qemu := exec.CommandContext(ctx, "qemu-system-x86_64", "-accel", "tcg", "-smp", "2", "-m", "1024",
		"-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot",
		"-kernel", kernel, "-initrd", initrd,
		"-append", "console=ttyS0 loglevel=3 "+guestFlag+" -- -test.v -test.skip=^(TestInGuest|TestGuestWritesToAVolumeOverNBD|TestServeAVolumeOverNBD|TestServeVolumesOnRequest)$ -test.timeout=6m")
	start := time.Now()
	out, err := qemu.CombinedOutput()
	took := time.Since(start).Round(100 * time.Millisecond)
	console := string(out)
	switch {
	case err != nil:
		t.Fatalf("QEMU: %v after %s; the guest's console:\n%s", err, took, console)
	case !strings.Contains(console, guestPass):
		t.Fatalf("the tests failed in the storage host guest (%s); its console:\n%s", took, console)
	case strings.Contains(console, "--- SKIP"):
		t.Fatalf("tests skipped in the storage host guest; its console:\n%s", console)
	}
	t.Logf("the storage host guest booted and passed the tests in %s", took)
}

// guestPass is what the storage host guest prints once the tests it ran
// passed.
const guestPass = "\ntrustack-lvm-guest: PASS"

// storageHostGuest builds the storage host guest, if it is not built,
// and returns its kernel and an initramfs with this package's test
// program, in a directory of the test's. It fails the test, saying how
// to install them, if the tools that takes are missing.
func storageHostGuest(t testing.TB) (kernel, initrd string) {
	t.Helper()
	for _, tool := range []string{"go", "qemu-system-x86_64", "cpio", "lvm", "thin_check", "qemu-img", "qemu-io", "qemu-storage-daemon"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run scripts/install-deps (make test does)", tool)
		}
	}
	command(t, "", nil, "../../scripts/build-lvm-guest", guestDir)

	// The test program, static, as a second cpio archive after the
	// guest's initramfs (4-byte aligned), unpacked over it as /guest-test.
	dir := t.TempDir()
	command(t, "", []string{"CGO_ENABLED=0"}, "go", "test", "-c", "-o", filepath.Join(dir, "guest-test"), ".")
	archive := command(t, dir, nil, "sh", "-c", "echo guest-test | cpio -o -H newc --quiet")
	image, err := os.ReadFile(filepath.Join(guestDir, "initrd.img"))
	if err != nil {
		t.Fatal(err)
	}
	image = append(image, make([]byte, (4-len(image)%4)%4)...)
	initrd = filepath.Join(dir, "initrd.img")
	if err := os.WriteFile(initrd, append(image, archive...), 0o600); err != nil {
		t.Fatal(err)
	}
	kernel, err = filepath.Abs(filepath.Join(guestDir, "vmlinuz"))
	if err != nil {
		t.Fatal(err)
	}
	return kernel, initrd
}

// command runs a program in dir ("" for this one), with env added to the
// environment, and returns its output; it fails the test with what the
// program said if the program fails.
func command(t testing.TB, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

// shared is the backend of the tests that need no group of their own:
// on the group DefaultGroup, which TestMain makes in the guest and
// removes after the tests. Making a group takes seconds under TCG.
var shared *Backend

func TestMain(m *testing.M) {
	if !inGuest() {
		os.Exit(m.Run())
	}
	os.Exit(inSharedGroup(m))
}

// inSharedGroup runs the tests with shared on a group it makes, and
// removes the group after them.
func inSharedGroup(m *testing.M) int {
	dir, err := os.MkdirTemp("", "lvm-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	remove, err := makeGroup(dir, DefaultGroup)
	if err != nil {
		fmt.Fprintf(os.Stderr, "make the volume group %s: %v\n", DefaultGroup, err)
		return 1
	}
	code := 1
	if shared, err = New(context.Background(), ""); err != nil {
		fmt.Fprintf(os.Stderr, "open the volume group %s: %v\n", DefaultGroup, err)
	} else {
		code = m.Run()
	}
	if err := remove(); err != nil {
		fmt.Fprintf(os.Stderr, "remove the volume group %s: %v\n", DefaultGroup, err)
		code = 1
	}
	return code
}

// open returns the backend on the tests' shared group, empty; what the
// test leaves in it is removed when the test ends.
func open(t testing.TB) *Backend {
	t.Helper()
	guestOnly(t)
	t.Cleanup(func() {
		lvs, err := shared.list(context.Background())
		if err != nil {
			t.Error(err)
			return
		}
		var left []string
		for name := range lvs {
			if name != Pool {
				left = append(left, shared.group+"/"+name)
			}
		}
		if len(left) > 0 {
			command(t, "", nil, "lvremove", append([]string{"-q", "-f"}, left...)...)
		}
	})
	return shared
}

// groups numbers the tests' own volume groups.
var groups atomic.Int64

// newGroup makes a volume group of the test's own and returns its name;
// it is removed, with its loop device, when the test ends.
func newGroup(t testing.TB) string {
	t.Helper()
	guestOnly(t)
	group := fmt.Sprintf("trustack-test-%d", groups.Add(1))
	remove, err := makeGroup(t.TempDir(), group)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := remove(); err != nil {
			t.Error(err)
		}
	})
	return group
}

// makeGroup makes the volume group named group on a loop device of a
// sparse 4 GiB file in dir, and returns what removes both.
func makeGroup(dir, group string) (remove func() error, err error) {
	file := filepath.Join(dir, group+".pv")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		return nil, err
	}
	if err := os.Truncate(file, 4*gib); err != nil {
		return nil, err
	}
	dev, detach, err := loopDevice(file)
	if err != nil {
		return nil, err
	}
	remove = func() error {
		_, err := run(context.Background(), "vgremove", "-q", "-f", group)
		if err == nil {
			_, err = run(context.Background(), "pvremove", "-q", "-y", dev)
		}
		return errors.Join(err, detach(), os.Remove(file))
	}
	if _, err := run(context.Background(), "pvcreate", "-q", dev); err != nil {
		return nil, errors.Join(err, detach())
	}
	if _, err := run(context.Background(), "vgcreate", "-q", group, dev); err != nil {
		_, rerr := run(context.Background(), "pvremove", "-q", "-y", dev)
		return nil, errors.Join(err, rerr, detach())
	}
	return remove, nil
}

// loopDevice attaches file to a free loop device, and returns the device
// and what detaches it.
func loopDevice(file string) (dev string, detach func() error, err error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return "", nil, err
	}
	defer ctl.Close()
	n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
	if err != nil {
		return "", nil, fmt.Errorf("find a free loop device: %w", err)
	}
	dev = fmt.Sprintf("/dev/loop%d", n)
	// ioctl runs a loop device's ioctl that takes an int argument.
	ioctl := func(req uint, arg int) error {
		loop, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer loop.Close()
		return unix.IoctlSetInt(int(loop.Fd()), req, arg)
	}
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	if err := ioctl(unix.LOOP_SET_FD, int(f.Fd())); err != nil {
		return "", nil, fmt.Errorf("attach %s to %s: %w", file, dev, err)
	}
	return dev, func() error { return ioctl(unix.LOOP_CLR_FD, 0) }, nil
}
