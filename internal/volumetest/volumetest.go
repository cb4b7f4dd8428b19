// Package volumetest serves the volume API in process for the tests of
// its handler and of its clients: over a block storage service on a new
// SQLite store, with one storage host (store1, a backend file of
// 100 GiB) whose agent the test provides, Cinder's default policy, and
// the callers of apitest.
package volumetest

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/trustack/trustack"
	volumeapi "github.com/trustack/trustack/api/openstack/volume"
	"github.com/trustack/trustack/internal/apitest"
	"github.com/trustack/trustack/policy"
	"github.com/trustack/trustack/sqlstore"
	"github.com/trustack/trustack/volume"
)

// Serve serves the volume API until the test ends, over a new block
// storage service with agents as its storage host's agent and with opts;
// then it waits for the service's work in the background. It returns the
// server (the API is at its URL + "/volume") and the service.
func Serve(t testing.TB, agents volume.Storage, opts volume.Options) (*httptest.Server, *volume.Service) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "volume.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	_, err = db.RegisterHost(ctx, &trustack.Host{ID: "h1", Name: "store1", AvailabilityZone: "nova", Enabled: true,
		CPUAllocationRatio: 1, RAMAllocationRatio: 1, DiskAllocationRatio: 1,
		Storage: []trustack.StorageBackend{{Name: "file", TotalGB: 100, FreeGB: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	enforcer, err := policy.New(volumeapi.Policy(), nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := volume.New(db, db, agents, opts)
	cfg := volumeapi.Config{LogLevel: new(slog.LevelVar), Hostname: "controller-1"}
	srv := httptest.NewServer(volumeapi.New(svc, apitest.Validator{}, enforcer, cfg, slog.New(slog.DiscardHandler)))
	t.Cleanup(func() { srv.Close(); svc.Wait() })
	return srv, svc
}
