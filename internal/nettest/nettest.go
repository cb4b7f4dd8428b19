// Package nettest helps tests look at what crosses a network: packet
// captures in network namespaces.
package nettest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Capture runs tcpdump with filter on an interface of a network namespace
// until the function it returns is called, which returns what tcpdump
// printed: one line a frame, with its Ethernet header (VLAN tags
// included).
func Capture(t testing.TB, ns, iface, filter string) func() string {
	t.Helper()
	var out strings.Builder
	cmd := exec.Command("ip", "netns", "exec", ns, "tcpdump", "-l", "-n", "-e", "-i", iface, filter)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	// tcpdump says it listens a moment before it does.
	time.Sleep(500 * time.Millisecond)
	return func() string {
		// What the kernel has captured and not yet handed over.
		time.Sleep(200 * time.Millisecond)
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		return out.String()
	}
}
