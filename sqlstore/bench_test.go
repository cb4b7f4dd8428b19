package sqlstore

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/internal/pgtest"
)

// BenchmarkHosts lists 10,000 hosts with 5 servers each, of 3 projects,
// with their tenants: what the scheduler reads at every refresh.
func BenchmarkHosts(b *testing.B) {
	for name, dsn := range map[string]func(testing.TB) string{
		"SQLite":     func(t testing.TB) string { return "sqlite://" + filepath.Join(t.TempDir(), "trustack.db") },
		"PostgreSQL": pgtest.DSN,
	} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			db, err := Open(ctx, dsn(b))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			const nHosts, perHost = 10000, 5
			start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
			err = db.inTx(ctx, func(q querier) error {
				for i := range nHosts {
					h := &trustack.Host{ID: fmt.Sprintf("h%05d", i), Number: i + 1, Name: fmt.Sprintf("host-%05d", i), VCPUs: 64, MemoryMB: 1 << 18,
						DiskGB: 1000, CPUAllocationRatio: 1, RAMAllocationRatio: 1, DiskAllocationRatio: 1, Enabled: true, CreatedAt: start, UpdatedAt: start}
					if err := hosts.add(ctx, q, h); err != nil {
						return err
					}
					for j := range perHost {
						project := fmt.Sprintf("p%d", (i+j)%3)
						srv := &trustack.Server{ID: fmt.Sprintf("s%05d-%d", i, j), ProjectID: project, VMState: trustack.VMActive, CreatedAt: start, UpdatedAt: start}
						if err := servers.add(ctx, q, srv); err != nil {
							return err
						}
						iso := "shared"
						if j == 0 {
							iso = "exclude:p9"
						}
						if _, err := q.ExecContext(ctx, `INSERT INTO claims (server_id, host_id, vcpus, memory_mb, disk_gb, project_id, isolation)
							VALUES ($1, $2, 1, 1, 1, $3, $4)`, srv.ID, h.ID, project, iso); err != nil {
							return err
						}
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				list, err := db.Hosts(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if len(list) != nHosts || len(list[0].Tenants) == 0 {
					b.Fatalf("%d hosts, the first with tenants %v", len(list), list[0].Tenants)
				}
			}
		})
	}
}
