package sqlstore

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/internal/pgtest"
)

// TestAttachmentStatusMigration upgrades a database with a volume in use
// and one being let go, attached before attachments had a status: both
// read back attached, made when attached, with no connection; an
// available volume has no attachment status.
func TestAttachmentStatusMigration(t *testing.T) {
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
			i := slices.IndexFunc(steps, func(m migration) bool { return m.name == "0015_volume_attachment_status" })
			if err := db.migrateSteps(ctx, steps[:i]); err != nil {
				t.Fatal(err)
			}
			def, err := db.VolumeTypeByName(ctx, trustack.DefaultVolumeType)
			if err != nil {
				t.Fatal(err)
			}
			at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
			for id, status := range map[string]string{"v-used": trustack.VolumeInUse, "v-going": trustack.VolumeDetaching, "v-free": trustack.VolumeAvailable} {
				v := &trustack.Volume{ID: id, ProjectID: "p", Size: 1, Status: status, TypeID: def.ID, CreatedAt: at, UpdatedAt: at}
				if status != trustack.VolumeAvailable {
					v.Attachment = trustack.VolumeAttachment{ID: "a-" + id, ServerID: "s", Host: "h", Device: "/dev/vdc", AttachedAt: at}
				}
				insertAsOf(t, db, volumes, v, "attach_status", "attachment_connection", "attachment_created_at", "task_owner")
			}
			if err := db.migrate(ctx); err != nil {
				t.Fatalf("migrate: %v", err)
			}
			for id, want := range map[string]string{"v-used": trustack.AttachAttached, "v-going": trustack.AttachAttached, "v-free": ""} {
				v, err := db.Volume(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				a := v.Attachment
				if a.Status != want || a.Connection != nil || (want != "" && !a.CreatedAt.Equal(at)) {
					t.Errorf("%s after the upgrade: status %q, connection %v, made %v; want %q, none, %v", id, a.Status, a.Connection, a.CreatedAt, want, at)
				}
			}
		})
	}
}
