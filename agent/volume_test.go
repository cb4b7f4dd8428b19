package agent_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/bus"
	hostnet "github.com/trustack/trustack/hostnet/fake"
	hypervisor "github.com/trustack/trustack/hypervisor/fake"
	"github.com/trustack/trustack/volume/file"
	"github.com/trustack/trustack/wire"
)

// registrar is a controller that records what hosts register.
type registrar struct{ hosts chan trustack.Host }

func (r registrar) Register(_ context.Context, h *trustack.Host) (wire.Registration, error) {
	r.hosts <- *h
	return wire.Registration{Host: *h}, nil
}
func (registrar) Heartbeat(string)                                               {}
func (registrar) PowerChanged(context.Context, wire.PowerEvent) error            { return nil }
func (registrar) Metadata(context.Context, wire.MetadataRequest) ([]byte, error) { return nil, nil }

// storageHost runs the agent of a storage host, storage-1, with a file
// backend, on a bus of its own until the test ends, and a controller that
// serves its registration and ctl's requests (none if nil). It returns
// controllerBus starts a bus and a controller on it that records the
// hosts registering; connect joins the bus as name.
func controllerBus(t testing.TB) (connect func(name string) *bus.Conn, controller *bus.Conn, reg registrar) {
	t.Helper()
	srv, err := bus.Serve(bus.ServerConfig{Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	connect = func(name string) *bus.Conn {
		conn, err := bus.Connect("", name, bus.InProcess(srv), bus.Logger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(conn.Close)
		return conn
	}
	controller = connect("controller")
	reg = registrar{hosts: make(chan trustack.Host, 1)}
	stop, err := wire.ServeControllers(controller, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return connect, controller, reg
}

// the controller's connection, the backend, and the host as registered.
func storageHost(t *testing.T, ctx context.Context, ctl wire.VolumeController) (*bus.Conn, *file.Backend, trustack.Host) {
	t.Helper()
	connect, controller, reg := controllerBus(t)
	if ctl != nil {
		sub, err := wire.ServeVolumeControllers(controller, ctl, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sub.Unsubscribe() })
	}

	hv, err := hypervisor.New(hypervisor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	backend, err := file.New(t.TempDir(), file.QCOW2)
	if err != nil {
		t.Fatal(err)
	}
	a := agent.New(connect("storage-1"), hv, hostnet.New(nil), agent.Config{Name: "storage-1", Volumes: map[string]agent.VolumeBackend{"file": backend}})
	go a.Run(ctx)
	var h trustack.Host
	select {
	case h = <-reg.hosts:
	case <-ctx.Done():
		t.Fatal("the host did not register")
	}
	return controller, backend, h
}

// TestStorageHost: a host with a volume backend registers it with its
// capacity, and makes, grows and deletes volumes in it as the controllers
// ask over the bus; a backend it does not run is ENOTFOUND.
func TestStorageHost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	controller, backend, h := storageHost(t, ctx, nil)
	if len(h.Storage) != 1 || h.Storage[0].Name != "file" || h.Storage[0].TotalGB <= 0 {
		t.Fatalf("registered storage %+v, want the backend file with its capacity", h.Storage)
	}

	hosts := wire.NewHosts(controller)
	const id = "0c9d8e7f-6a5b-4c3d-8e2f-1a0b9c8d7e6f"
	if err := hosts.CreateVolume(ctx, "storage-1", "file", id, 1); err != nil {
		t.Fatal(err)
	}
	if err := hosts.ExtendVolume(ctx, "storage-1", "file", id, 2, false); err != nil {
		t.Fatal(err)
	}
	if got, err := backend.Volumes(ctx); err != nil || got[id] != 2 {
		t.Errorf("the backend has %v (%v), want %s of 2 GiB", got, err, id)
	}
	if err := hosts.ExtendVolume(ctx, "storage-1", "file", id, 1, false); trustack.ErrorCode(err) != trustack.EINVALID {
		t.Errorf("shrinking a volume: %v, want EINVALID", err)
	}
	if err := hosts.CreateVolume(ctx, "storage-1", "lvm", id, 1); trustack.ErrorCode(err) != trustack.ENOTFOUND {
		t.Errorf("a backend the host does not run: %v, want ENOTFOUND", err)
	}
	if err := hosts.DeleteVolume(ctx, "storage-1", "file", id); err != nil {
		t.Fatal(err)
	}
	if got, err := backend.Volumes(ctx); err != nil || len(got) != 0 {
		t.Errorf("after the delete the backend has %v (%v), want nothing", got, err)
	}
}
