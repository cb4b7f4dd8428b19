package volume_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
)

func (storage) RevertVolume(context.Context, string, string, string, string) error { return nil }

// action posts an action on a volume as token, at the microversion
// (volume 3.x; "" for none), and returns the status and the body.
func (s *server) action(t *testing.T, token, version, volumeID string, body any) (int, obj) {
	t.Helper()
	j, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", s.URL+"/volume/v3/volumes/"+volumeID+"/action", bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Auth-Token", token)
	if version != "" {
		req.Header.Set("OpenStack-API-Version", "volume "+version)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var o obj
	json.NewDecoder(resp.Body).Decode(&o)
	return resp.StatusCode, o
}

// TestRevertToSnapshot: from microversion 3.40, a volume reverts to its
// latest snapshot, and to no other; before it, there is no such action.
func TestRevertToSnapshot(t *testing.T) {
	s := newServer(t)
	vol := s.create(t, "alice", obj{"size": 1})["id"].(string)
	snapshot := func() string {
		t.Helper()
		snap := s.must(t, http.StatusAccepted, "alice", "POST", "/volume/v3/snapshots", obj{"snapshot": obj{"volume_id": vol}})["snapshot"].(obj)
		s.svc.Wait()
		return snap["id"].(string)
	}
	s1, s2 := snapshot(), snapshot()
	status := func() string {
		t.Helper()
		return s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/volumes/"+vol, nil)["volume"].(obj)["status"].(string)
	}

	for _, version := range []string{"", "3.0", "3.39"} {
		code, body := s.action(t, "alice", version, vol, obj{"revert": obj{"snapshot_id": s2}})
		if code != http.StatusBadRequest {
			t.Errorf("revert at %q: status %d, want 400", version, code)
		}
		fault(t, body, "badRequest")
	}
	code, body := s.action(t, "alice", "3.40", vol, obj{"revert": obj{"snapshot_id": s1}})
	if code != http.StatusBadRequest {
		t.Errorf("revert to a snapshot not the latest: status %d, want 400", code)
	}
	fault(t, body, "badRequest")
	if code, _ := s.action(t, "bob", "3.40", vol, obj{"revert": obj{"snapshot_id": s2}}); code != http.StatusNotFound {
		t.Errorf("revert of another project's volume: status %d, want 404", code)
	}
	if got := status(); got != "available" {
		t.Errorf("after the refusals, the volume is %s, want available", got)
	}

	if code, body := s.action(t, "alice", "3.40", vol, obj{"revert": obj{"snapshot_id": s2}}); code != http.StatusAccepted {
		t.Fatalf("revert to the latest snapshot: status %d, want 202: %v", code, body)
	}
	s.svc.Wait()
	if got := status(); got != "available" {
		t.Errorf("reverted, the volume is %s, want available", got)
	}
	snap := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/snapshots/"+s2, nil)["snapshot"].(obj)
	if snap["status"] != "available" {
		t.Errorf("reverted to, the snapshot is %v, want available", snap["status"])
	}
	if code, _ := s.action(t, "alice", "latest", vol, obj{"revert": obj{"snapshot_id": s2}}); code != http.StatusAccepted {
		t.Errorf("revert at the latest microversion: status %d, want 202", code)
	}
}
