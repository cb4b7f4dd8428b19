package sqlstore

import (
	"context"
	"time"
)

// Controllers' leases (package cluster).

func (db *DB) RenewLease(ctx context.Context, member string, until time.Time) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO controller_leases (controller, expires_at) VALUES ($1, $2)
		ON CONFLICT (controller) DO UPDATE SET expires_at = excluded.expires_at`, member, until.UnixMicro())
	return err
}

func (db *DB) LiveMembers(ctx context.Context, at time.Time) ([]string, error) {
	return db.strings(ctx, `SELECT controller FROM controller_leases WHERE expires_at > $1 ORDER BY controller`, at.UnixMicro())
}

func (db *DB) DropLease(ctx context.Context, member string) error {
	_, err := db.write.ExecContext(ctx, `DELETE FROM controller_leases WHERE controller = $1`, member)
	return err
}
