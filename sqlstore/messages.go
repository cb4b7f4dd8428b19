package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/trustack/trustack"
)

// Volume messages, as volume.Store asks: rows that are written once, read
// and deleted; expiry is the caller's to ask for, with its own clock.

var volumeMessages = &table[trustack.VolumeMessage]{
	name: "volume_messages", kind: "message", order: "created_at, id",
	columns: []string{"id", "project_id", "request_id", "resource_type", "resource_id", "action_id", "detail_id", "event_id",
		"message_level", "created_at", "expires_at"},
	fields: func(m *trustack.VolumeMessage) []any {
		return []any{&m.ID, &m.ProjectID, &m.RequestID, &m.ResourceType, &m.ResourceID, &m.ActionID, &m.DetailID, &m.EventID,
			&m.Level, timeColumn{&m.CreatedAt}, timeColumn{&m.ExpiresAt}}
	},
	missing: func(id string) error {
		return trustack.Reasonf(trustack.ENOTFOUND, "MessageNotFound", "Message %s could not be found.", id)
	},
}

// CreateVolumeMessage adds a message; ECONFLICT for an ID in use.
func (db *DB) CreateVolumeMessage(ctx context.Context, m *trustack.VolumeMessage) error {
	return volumeMessages.insert(ctx, db.write, m)
}

// VolumeMessage returns a message, expired or not; ENOTFOUND
// (MessageNotFound).
func (db *DB) VolumeMessage(ctx context.Context, id string) (*trustack.VolumeMessage, error) {
	return volumeMessages.get(ctx, db.read, id)
}

// VolumeMessages returns the messages matching f that expire after now,
// oldest first.
func (db *DB) VolumeMessages(ctx context.Context, f trustack.VolumeMessageFilter, now time.Time) ([]*trustack.VolumeMessage, error) {
	var w where
	w.add("expires_at > ?", now.UnixMicro())
	w.eq("project_id", f.ProjectID)
	w.eq("resource_type", f.ResourceType)
	w.eq("resource_id", f.ResourceID)
	w.eq("event_id", f.EventID)
	w.eq("request_id", f.RequestID)
	w.eq("message_level", f.Level)
	return volumeMessages.list(ctx, db.read, w)
}

// DeleteVolumeMessage removes a message; ENOTFOUND (MessageNotFound).
func (db *DB) DeleteVolumeMessage(ctx context.Context, id string) error {
	return volumeMessages.delete(ctx, db.write, id)
}

// DeleteExpiredVolumeMessages removes the messages that expire at or
// before now and returns how many there were.
func (db *DB) DeleteExpiredVolumeMessages(ctx context.Context, now time.Time) (int, error) {
	res, err := db.write.ExecContext(ctx, `DELETE FROM volume_messages WHERE expires_at <= $1`, now.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("delete expired messages: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}
