package sqlstore

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/internal/pgtest"
)

// insertAsOf adds v to t's table as an older schema has it: without the
// columns named in skip, which came later.
func insertAsOf[T any](t testing.TB, db *DB, tb *table[T], v *T, skip ...string) {
	t.Helper()
	var cols, marks []string
	var args []any
	fields := tb.fields(v)
	for i, c := range tb.columns {
		if slices.Contains(skip, c) {
			continue
		}
		cols, args = append(cols, c), append(args, fields[i])
		marks = append(marks, fmt.Sprintf("$%d", len(args)))
	}
	query := "INSERT INTO " + tb.name + " (" + strings.Join(cols, ", ") + ") VALUES (" + strings.Join(marks, ", ") + ")"
	if _, err := db.write.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("insert %s as of an older schema: %v", tb.kind, err)
	}
}

// TestACaaSMigrationKeepsClaims upgrades a database with a placed server
// to the ACaaS schema: the claim gets its server's project, shares its
// host (the isolation of every server placed before), and the host and
// server read back with their new fields empty.
func TestACaaSMigrationKeepsClaims(t *testing.T) {
	for name, dsn := range map[string]func(testing.TB) string{
		"SQLite":     func(t testing.TB) string { return "sqlite://" + filepath.Join(t.TempDir(), "trustack.db") },
		"PostgreSQL": pgtest.DSN,
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db, err := open(dsn(t))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			steps, err := loadMigrations()
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(steps, func(m migration) bool { return m.name == "0005_acaas" })
			if err := db.migrateSteps(ctx, steps[:i]); err != nil {
				t.Fatal(err)
			}
			start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
			h := &trustack.Host{ID: "h", Number: 1, Name: "h", VCPUs: 4, MemoryMB: 4096, DiskGB: 10, CPUAllocationRatio: 1, RAMAllocationRatio: 1,
				DiskAllocationRatio: 1, UsedVCPUs: 1, UsedMemoryMB: 512, UsedDiskGB: 1, RunningVMs: 1, Enabled: true, CreatedAt: start, UpdatedAt: start}
			insertAsOf(t, db, hosts, h, "domain", "properties", "security", "physical_networks", "network_node", "storage")
			srv := &trustack.Server{ID: "s", Name: "s", ProjectID: "p", Flavor: trustack.Flavor{VCPUs: 1, RAM: 512, Disk: 1}, Host: "h",
				VMState: trustack.VMActive, CreatedAt: start, UpdatedAt: start}
			insertAsOf(t, db, servers, srv, "requirements", "rcot", "ports", "user_ports", "block_devices", "task_owner", "description")
			if _, err := db.write.ExecContext(ctx, `INSERT INTO claims (server_id, host_id, vcpus, memory_mb, disk_gb) VALUES ('s', 'h', 1, 512, 1)`); err != nil {
				t.Fatal(err)
			}

			if err := db.migrate(ctx); err != nil {
				t.Fatalf("migrate to the ACaaS schema: %v", err)
			}
			claims, err := db.Claims(ctx, "h")
			if err != nil {
				t.Fatal(err)
			}
			want := []trustack.Claim{{ServerID: "s", HostID: "h", VCPUs: 1, MemoryMB: 512, DiskGB: 1, ProjectID: "p"}}
			if !reflect.DeepEqual(claims, want) {
				t.Errorf("claims after the upgrade: got %+v, want %+v", claims, want)
			}
			got, err := db.Host(ctx, "h")
			if err != nil {
				t.Fatal(err)
			}
			if got.Domain != "" || got.Properties != nil || got.Security != nil || got.PhysicalNetworks != nil || got.NetworkNode ||
				!reflect.DeepEqual(got.Tenants, []trustack.Tenant{{ProjectID: "p", Servers: 1}}) {
				t.Errorf("host after the upgrade: domain %q, properties %v, security %v, physical networks %v, network node %v, tenants %+v; want none, and project p's one server",
					got.Domain, got.Properties, got.Security, got.PhysicalNetworks, got.NetworkNode, got.Tenants)
			}
			s, err := db.Server(ctx, "s")
			if err != nil {
				t.Fatal(err)
			}
			if s.Requirements != nil || s.RCoT != "" || s.Ports != nil || s.UserPorts != nil || s.Description != nil {
				t.Errorf("server after the upgrade: requirements %v, RCoT %q, ports %v, user's ports %v, description %v; want none",
					s.Requirements, s.RCoT, s.Ports, s.UserPorts, s.Description)
			}
		})
	}
}
