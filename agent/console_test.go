package agent_test

import (
	"bufio"
	"context"
	"io"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/agent"
	hostnet "github.com/trustack/trustack/hostnet/fake"
	hypervisor "github.com/trustack/trustack/hypervisor/fake"
	"github.com/trustack/trustack/wire"
)

// TestRemoteConsoleAdmission: a host admits one connection per console
// it was asked for, to that server's console only, within its TTL.
func TestRemoteConsoleAdmission(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	connect, controller, reg := controllerBus(t)
	hv, err := hypervisor.New(hypervisor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := agent.New(connect("compute-1"), hv, hostnet.New(nil), agent.Config{Name: "compute-1", ConsoleListen: "127.0.0.1:0"})
	go a.Run(ctx)
	select {
	case <-reg.hosts:
	case <-ctx.Done():
		t.Fatal("the host did not register")
	}
	hosts := wire.NewHosts(controller)
	for _, id := range []string{"a", "b"} {
		if _, err := hosts.Spawn(ctx, "compute-1", wire.Spec{ServerID: id, VCPUs: 1, MemoryMB: 64}); err != nil {
			t.Fatal(err)
		}
	}

	// greets reports whether a connection with end's secret reaches a
	// VNC console.
	greets := func(end wire.ConsoleEndpoint) bool {
		conn, err := wire.DialConsole(ctx, end)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		return err == nil && line == "RFB 003.008\n"
	}
	end, err := hosts.RemoteConsole(ctx, "compute-1", "a", "vnc", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !greets(end) {
		t.Error("an admitted console: no RFB greeting")
	}
	if greets(end) {
		t.Error("a console secret used twice: admitted again")
	}
	if greets(wire.ConsoleEndpoint{Address: end.Address, Secret: "guessed"}) {
		t.Error("a secret never given: admitted")
	}
	expired, err := hosts.RemoteConsole(ctx, "compute-1", "b", "vnc", time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	if greets(expired) {
		t.Error("a console secret past its TTL: admitted")
	}

	serial, err := hosts.RemoteConsole(ctx, "compute-1", "b", "serial", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := wire.DialConsole(ctx, serial)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "b?\n")
	echo, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || echo != "b?\n" {
		t.Errorf("the serial console's echo: got %q (%v), want %q", echo, err, "b?\n")
	}
	conn.Close()

	for _, tc := range []struct {
		server, protocol, code string
	}{
		{"missing", "vnc", trustack.ENOTFOUND},
		{"a", "spice", trustack.EINVALID},
	} {
		if _, err := hosts.RemoteConsole(ctx, "compute-1", tc.server, tc.protocol, time.Minute); trustack.ErrorCode(err) != tc.code {
			t.Errorf("a %s console of server %s: got %v, want code %s", tc.protocol, tc.server, err, tc.code)
		}
	}
}
