package storetest

import (
	"testing"
	"time"

	"github.com/trustack/trustack"
)

// testVolumeMessages: a message reads back as it was written; lists hold
// the messages f selects that have not expired, oldest first; expired
// ones are deleted, and only they; a deleted message is gone.
func testVolumeMessages(t *testing.T, s Store) {
	at := func(id, project, resource string, created time.Time) *trustack.VolumeMessage {
		return trustack.NewVolumeMessage(id, project, "req-"+id, trustack.VolumeResource, resource, "001", "003", created)
	}
	old := at("m-old", "p1", "v1", start.Add(-trustack.VolumeMessageTTL)) // expires at start
	first := at("m-1", "p1", "v1", start)
	second := at("m-2", "p1", "v2", start.Add(time.Second))
	snap := trustack.NewVolumeMessage("m-3", "p1", "req-3", trustack.SnapshotResource, "s1", "009", "013", start.Add(2*time.Second))
	other := at("m-4", "p2", "v3", start.Add(3*time.Second))
	for _, m := range []*trustack.VolumeMessage{second, old, snap, first, other} {
		must(t, s.CreateVolumeMessage(ctx, m))
	}
	code(t, s.CreateVolumeMessage(ctx, at("m-1", "p1", "v9", start)), trustack.ECONFLICT)

	got, err := s.VolumeMessage(ctx, "m-2")
	must(t, err)
	equal(t, got, second)
	if got.EventID != "VOLUME_VOLUME_001_003" {
		t.Errorf("event %q, want VOLUME_VOLUME_001_003", got.EventID)
	}
	_, err = s.VolumeMessage(ctx, "nope")
	reason(t, err, trustack.ENOTFOUND, "MessageNotFound")

	listed := func(f trustack.VolumeMessageFilter, now time.Time) []string {
		t.Helper()
		list, err := s.VolumeMessages(ctx, f, now)
		must(t, err)
		var out []string
		for _, m := range list {
			out = append(out, m.ID)
		}
		return out
	}
	for _, tt := range []struct {
		name string
		f    trustack.VolumeMessageFilter
		want []string
	}{
		{"all", trustack.VolumeMessageFilter{}, []string{"m-1", "m-2", "m-3", "m-4"}},
		{"project", trustack.VolumeMessageFilter{ProjectID: "p1"}, []string{"m-1", "m-2", "m-3"}},
		{"resource", trustack.VolumeMessageFilter{ResourceID: "v1"}, []string{"m-1"}},
		{"resource type", trustack.VolumeMessageFilter{ResourceType: trustack.SnapshotResource}, []string{"m-3"}},
		{"event", trustack.VolumeMessageFilter{EventID: "VOLUME_VOLUME_SNAPSHOT_009_013"}, []string{"m-3"}},
		{"request", trustack.VolumeMessageFilter{RequestID: "req-m-2"}, []string{"m-2"}},
		{"level", trustack.VolumeMessageFilter{Level: trustack.MessageError, ProjectID: "p2"}, []string{"m-4"}},
		{"no match", trustack.VolumeMessageFilter{Level: "INFO"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			equal(t, listed(tt.f, start), tt.want)
		})
	}
	// Near the end of their life only the newest are left.
	equal(t, listed(trustack.VolumeMessageFilter{}, second.ExpiresAt), []string{"m-3", "m-4"})

	n, err := s.DeleteExpiredVolumeMessages(ctx, start)
	must(t, err)
	if n != 1 {
		t.Errorf("deleted %d expired messages, want 1 (m-old)", n)
	}
	_, err = s.VolumeMessage(ctx, "m-old")
	reason(t, err, trustack.ENOTFOUND, "MessageNotFound")
	if _, err := s.VolumeMessage(ctx, "m-1"); err != nil {
		t.Errorf("a message that has not expired was deleted: %v", err)
	}

	must(t, s.DeleteVolumeMessage(ctx, "m-1"))
	reason(t, s.DeleteVolumeMessage(ctx, "m-1"), trustack.ENOTFOUND, "MessageNotFound")
	equal(t, listed(trustack.VolumeMessageFilter{ProjectID: "p1"}, start), []string{"m-2", "m-3"})
}
