// Package namespace runs code and processes in Linux network namespaces
// named under /run/netns: the hosts that `trustack up` stands up on one
// machine, and a host's DHCP servers and routers.
package namespace

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NS is a network namespace: a named one or, if unnamed, the process's
// own.
type NS struct {
	Name   string
	Handle netns.NsHandle // closed (netns.None()) for the process's own
}

// Open opens the namespace named name; "" is the process's own.
func Open(name string) (NS, error) {
	if name == "" {
		return NS{Handle: netns.None()}, nil
	}
	h, err := netns.GetFromName(name)
	if err != nil {
		return NS{}, fmt.Errorf("network namespace %s: %w", name, err)
	}
	return NS{Name: name, Handle: h}, nil
}

// Create opens the namespace named name, made if missing.
func Create(name string) (NS, error) {
	if ns, err := Open(name); err == nil {
		return ns, nil
	}
	// Making a namespace moves the thread into it: do it on a thread that
	// goes back.
	err := onThread(func() error {
		h, err := netns.NewNamed(name)
		if err == nil {
			h.Close()
		}
		return err
	})
	if err != nil {
		return NS{}, fmt.Errorf("make network namespace %s: %w", name, err)
	}
	return Open(name)
}

// Remove removes the namespace named name, if it is there.
func Remove(name string) error {
	if err := netns.DeleteNamed(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove network namespace %s: %w", name, err)
	}
	return nil
}

// Destroy kills every process in the namespace named name and removes it,
// as a machine's power going off ends what ran on it.
func Destroy(name string) error {
	var ns unix.Stat_t
	if err := unix.Stat(filepath.Join("/run/netns", name), &ns); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("network namespace %s: %w", name, err)
	}
	links, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	for _, l := range links {
		var st unix.Stat_t
		if unix.Stat(l, &st) != nil || st.Dev != ns.Dev || st.Ino != ns.Ino {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(l)))); err == nil {
			unix.Kill(pid, unix.SIGKILL)
		}
	}
	return Remove(name)
}

// List returns the names of the namespaces whose names start with prefix.
func List(prefix string) []string {
	entries, _ := os.ReadDir("/run/netns")
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// Close lets go of the namespace; it stays.
func (ns NS) Close() {
	if ns.Handle.IsOpen() {
		ns.Handle.Close()
	}
}

// Do runs fn on a thread in the namespace, for what is made in the
// namespace of the thread that makes it rather than through a netlink
// handle: tap devices, sockets, sysctls and child processes, which start
// in their parent thread's namespace.
func (ns NS) Do(fn func() error) error {
	if !ns.Handle.IsOpen() {
		return fn()
	}
	return onThread(func() error {
		if err := netns.Set(ns.Handle); err != nil {
			return fmt.Errorf("enter network namespace %s: %w", ns.Name, err)
		}
		return fn()
	})
}

// Sysctl sets a sysctl of the namespace's, such as net/ipv4/ip_forward.
func (ns NS) Sysctl(name, value string) error {
	return ns.Do(func() error {
		if err := os.WriteFile("/proc/sys/"+name, []byte(value+"\n"), 0); err != nil {
			return fmt.Errorf("sysctl %s in %s: %w", name, ns.Name, err)
		}
		return nil
	})
}

// onThread runs fn on a locked thread and brings the thread back to its
// namespace after. A thread that cannot go back stays locked, and ends
// with its goroutine rather than serve another in the wrong namespace.
func onThread(fn func() error) error {
	runtime.LockOSThread()
	own, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("this thread's network namespace: %w", err)
	}
	defer own.Close()
	err = fn()
	if netns.Set(own) == nil {
		runtime.UnlockOSThread()
	}
	return err
}
