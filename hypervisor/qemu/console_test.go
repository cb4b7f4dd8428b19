package qemu

import (
	"io"
	"net"
	"testing"
)

// TestSerialPortShared checks that remote consoles on a guest's serial
// port read what it prints from when they attached, write to it, and that
// one that falls behind is cut off without holding up the guest.
func TestSerialPortShared(t *testing.T) {
	qemu, ours := net.Pipe()
	p := &serialPort{conn: ours, taps: map[*serialTap]bool{}}
	defer p.Close()

	p.Write([]byte("before\n"))
	a, err := p.attach()
	if err != nil {
		t.Fatal(err)
	}
	slow, err := p.attach()
	if err != nil {
		t.Fatal(err)
	}
	p.Write([]byte("login: "))
	got := make([]byte, len("login: "))
	if _, err := io.ReadFull(a, got); err != nil || string(got) != "login: " {
		t.Errorf("a console's first read: got %q (%v), want %q", got, err, "login: ")
	}

	go a.Write([]byte("root\n"))
	typed := make([]byte, len("root\n"))
	if _, err := io.ReadFull(qemu, typed); err != nil || string(typed) != "root\n" {
		t.Errorf("the guest read: got %q (%v), want %q", typed, err, "root\n")
	}

	// The slow console reads nothing while the guest prints on.
	for range tapBacklog + 1 {
		p.Write([]byte("x"))
		a.Read(make([]byte, 1))
	}
	var n int
	for {
		if _, err := slow.Read(make([]byte, 64)); err == io.EOF {
			break
		}
		n++
	}
	if n != tapBacklog {
		t.Errorf("a console that fell behind read %d writes before its end, want %d", n, tapBacklog)
	}

	a.Close()
	if _, err := a.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read after close: got %v, want EOF", err)
	}
	p.Close()
	if _, err := p.attach(); err == nil {
		t.Error("attach to a closed port: no error")
	}
}
