package linux

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// namespace is the network namespace a host's network is in: a named one
// (under /run/netns) or, if none is named, the process's own.
type namespace struct {
	name   string
	handle netns.NsHandle // closed (netns.None) for the process's own
}

func openNamespace(name string) (namespace, error) {
	if name == "" {
		return namespace{handle: netns.None()}, nil
	}
	h, err := netns.GetFromName(name)
	if err != nil {
		return namespace{}, fmt.Errorf("network namespace %s: %w", name, err)
	}
	return namespace{name: name, handle: h}, nil
}

func (ns namespace) close() {
	if ns.handle.IsOpen() {
		ns.handle.Close()
	}
}

// do runs fn on a thread in the namespace, for what is made in the
// namespace of the thread that makes it rather than through a netlink
// handle: tap devices and sockets, sysctls, child processes.
func (ns namespace) do(fn func() error) error {
	if !ns.handle.IsOpen() {
		return fn()
	}
	runtime.LockOSThread()
	own, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("this thread's network namespace: %w", err)
	}
	defer own.Close()
	if err := netns.Set(ns.handle); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace %s: %w", ns.name, err)
	}
	err = fn()
	// A thread that cannot go back stays locked, and ends with its
	// goroutine rather than serve another in the wrong namespace.
	if back := netns.Set(own); back == nil {
		runtime.UnlockOSThread()
	}
	return err
}
