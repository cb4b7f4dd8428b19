package volume_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/trustack/trustack/internal/apitest"
	"github.com/trustack/trustack/internal/volumetest"
	"github.com/trustack/trustack/volume"
	"github.com/trustack/trustack/wire"
)

// exporting is storage hosts that also serve volumes over NBD, recording
// the key each volume is served to.
type exporting struct {
	storage
	mu     sync.Mutex
	served map[string]wire.PSK // by volume
}

func (e *exporting) ExportVolume(_ context.Context, host, _, id string, key wire.PSK) (wire.NBDExport, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.served[id] = key
	return wire.NBDExport{Host: "192.0.2.10", Port: 10809, Name: id, Key: key}, nil
}

func (e *exporting) UnexportVolume(_ context.Context, _, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.served, id)
	return nil
}

func (e *exporting) key(id string) (wire.PSK, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k, ok := e.served[id]
	return k, ok
}

// versioned is a client that asks for a volume API microversion.
func versioned(v string) *http.Client {
	return &http.Client{Transport: versionTransport(v)}
}

type versionTransport string

func (v versionTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("OpenStack-API-Version", "volume "+string(v))
	return http.DefaultTransport.RoundTrip(r)
}

const instance = "0d2b5c3e-8a8f-4f5e-9c7a-6f4d3b2a1c0e"

// TestAttachmentsAPI: Cinder's attachments API as another cloud's Nova
// drives it: reserve, connect, complete and delete, with the bodies,
// statuses and errors it reads, from microversion 3.27 (os-complete from
// 3.44), and not there before.
func TestAttachmentsAPI(t *testing.T) {
	e := &exporting{served: map[string]wire.PSK{}}
	srv, svc := volumetest.Serve(t, e, volume.Options{})
	s := &server{srv, svc}
	v := s.create(t, "alice", obj{"size": 1})
	id := v["id"].(string)
	at27, at44, at0 := versioned("3.27"), versioned("3.44"), versioned("3.0")
	url := func(path string) string { return s.URL + "/volume/v3/attachments" + path }

	if status, _ := apitest.Do(t, at0, "alice", "GET", url(""), nil); status != http.StatusNotFound {
		t.Errorf("GET /attachments at 3.0: %d, want 404", status)
	}
	if status, _ := apitest.Do(t, at0, "alice", "POST", url(""), obj{"attachment": obj{"volume_uuid": id, "instance_uuid": instance}}); status != http.StatusNotFound {
		t.Errorf("POST /attachments at 3.0: %d, want 404", status)
	}
	for name, body := range map[string]obj{
		"no volume_uuid":     {"attachment": obj{"instance_uuid": instance}},
		"no instance_uuid":   {"attachment": obj{"volume_uuid": id}},
		"a volume_uuid name": {"attachment": obj{"volume_uuid": "vol1", "instance_uuid": instance}},
		"mode before 3.54":   {"attachment": obj{"volume_uuid": id, "instance_uuid": instance, "mode": "ro"}},
		"a connector string": {"attachment": obj{"volume_uuid": id, "instance_uuid": instance, "connector": "compute-9"}},
	} {
		if status, _ := apitest.Do(t, at27, "alice", "POST", url(""), body); status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, status)
		}
	}
	if status, _ := apitest.Do(t, at27, "rita", "POST", url(""), obj{"attachment": obj{"volume_uuid": id, "instance_uuid": instance}}); status != http.StatusForbidden {
		t.Errorf("a reader creating an attachment: %d, want 403", status)
	}
	if status, _ := apitest.Do(t, at27, "bob", "POST", url(""), obj{"attachment": obj{"volume_uuid": id, "instance_uuid": instance}}); status != http.StatusNotFound {
		t.Errorf("another project's volume: %d, want 404", status)
	}
	if got := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/volumes/"+id, nil)["volume"].(obj)["status"]; got != "available" {
		t.Fatalf("after refusals the volume is %v, want available", got)
	}

	// Reserved, as openstack volume attachment create without --connect
	// asks (an empty connector).
	a := apitest.Must(t, at27, http.StatusOK, "alice", "POST", url(""),
		obj{"attachment": obj{"volume_uuid": id, "instance_uuid": instance, "connector": obj{}}})["attachment"].(obj)
	aid, _ := a["id"].(string)
	want := obj{"id": aid, "status": "reserved", "instance": instance, "volume_id": id, "attached_at": "", "detached_at": "",
		"attach_mode": "null", "connection_info": obj{}}
	for k, w := range want {
		if k != "connection_info" && a[k] != w {
			t.Errorf("created %s = %v, want %v", k, a[k], w)
		}
	}
	if ci, ok := a["connection_info"].(obj); !ok || len(ci) != 0 {
		t.Errorf("created connection_info = %v, want {}", a["connection_info"])
	}
	if got := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/volumes/"+id, nil)["volume"].(obj); got["status"] != "reserved" || len(got["attachments"].([]any)) != 0 {
		t.Errorf("volume %v with attachments %v, want reserved with none listed, as Cinder lists attached ones", got["status"], got["attachments"])
	}
	if status, body := apitest.Do(t, at27, "alice", "POST", url(""), obj{"attachment": obj{"volume_uuid": id, "instance_uuid": instance}}); status != http.StatusBadRequest {
		t.Errorf("a second attachment: %d %v, want 400", status, body)
	}
	if shown := apitest.Must(t, at27, http.StatusOK, "alice", "GET", url("/"+aid), nil)["attachment"].(obj); shown["connection_info"] != nil || shown["status"] != "reserved" {
		t.Errorf("shown reserved: %v, want null connection_info", shown)
	}

	// Connected: the volume is served to the key connection_info gives.
	if status, _ := apitest.Do(t, at27, "alice", "PUT", url("/"+aid), obj{"attachment": obj{}}); status != http.StatusBadRequest {
		t.Errorf("an update without a connector: %d, want 400", status)
	}
	if status, _ := apitest.Do(t, at27, "bob", "PUT", url("/"+aid), obj{"attachment": obj{"connector": obj{"host": "compute-9"}}}); status != http.StatusNotFound {
		t.Errorf("another project's attachment: %d, want 404", status)
	}
	a = apitest.Must(t, at27, http.StatusOK, "alice", "PUT", url("/"+aid),
		obj{"attachment": obj{"connector": obj{"host": "compute-9", "mountpoint": "/dev/vdb", "initiator": "iqn.x", "multipath": false}}})["attachment"].(obj)
	ci, _ := a["connection_info"].(obj)
	data, _ := ci["data"].(obj)
	key, served := e.key(id)
	switch {
	case a["status"] != "attaching" || a["attach_mode"] != "rw":
		t.Errorf("connected: %v, want attaching rw", a)
	case ci["driver_volume_type"] != "nbd" || data["host"] != "192.0.2.10" || data["port"] != 10809.0 || data["name"] != id:
		t.Errorf("connection_info %v, want the NBD export", ci)
	case !served || data["tls_psk_identity"] != key.Identity || data["tls_psk_secret"] != key.Secret:
		t.Errorf("connection key %v/%v, served %v to %+v", data["tls_psk_identity"], data["tls_psk_secret"], served, key)
	}
	if got := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/volumes/"+id, nil)["volume"].(obj)["status"]; got != "attaching" {
		t.Errorf("volume %v, want attaching", got)
	}

	// Lists: the summary without connection_info, the detail with it.
	list := apitest.Must(t, at27, http.StatusOK, "alice", "GET", url("?volume_id="+id), nil)["attachments"].([]any)
	if len(list) != 1 || len(list[0].(obj)) != 4 || list[0].(obj)["id"] != aid {
		t.Errorf("summary list %v, want the attachment with id, status, instance, volume_id", list)
	}
	detail := apitest.Must(t, at27, http.StatusOK, "alice", "GET", url("/detail?instance_id="+instance), nil)["attachments"].([]any)
	if len(detail) != 1 || detail[0].(obj)["connection_info"] == nil {
		t.Errorf("detailed list %v, want the attachment with its connection_info", detail)
	}
	for token, query := range map[string]string{"alice": "?status=reserved", "bob": "", "admin": ""} {
		if got := apitest.Must(t, at27, http.StatusOK, token, "GET", url(query), nil)["attachments"].([]any); len(got) != 0 {
			t.Errorf("%s listing %q: %v, want none", token, query, got)
		}
	}
	if got := apitest.Must(t, at27, http.StatusOK, "admin", "GET", url("?all_tenants=1&status=attaching"), nil)["attachments"].([]any); len(got) != 1 {
		t.Errorf("an administrator listing all projects': %v, want the attachment", got)
	}
	if status, _ := apitest.Do(t, at27, "alice", "GET", url("?size=1"), nil); status != http.StatusBadRequest {
		t.Errorf("an unknown filter: %d, want 400", status)
	}

	// Completed from 3.44.
	complete := obj{"os-complete": nil}
	if status, _ := apitest.Do(t, at27, "alice", "POST", url("/"+aid+"/action"), complete); status != http.StatusNotFound {
		t.Errorf("os-complete at 3.27: %d, want 404", status)
	}
	if status, _ := apitest.Do(t, at44, "rita", "POST", url("/"+aid+"/action"), complete); status != http.StatusForbidden {
		t.Errorf("os-complete by a reader: %d, want 403", status)
	}
	if status, _ := apitest.Do(t, at44, "alice", "POST", url("/"+aid+"/action"), complete); status != http.StatusNoContent {
		t.Errorf("os-complete at 3.44: %d, want 204", status)
	}
	a = apitest.Must(t, at44, http.StatusOK, "rita", "GET", url("/"+aid), nil)["attachment"].(obj)
	if a["status"] != "attached" || a["attached_at"] == "" {
		t.Errorf("completed: %v, want attached with attached_at", a)
	}
	vol := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/volumes/"+id, nil)["volume"].(obj)
	if l, _ := vol["attachments"].([]any); vol["status"] != "in-use" || len(l) != 1 || l[0].(obj)["attachment_id"] != aid || l[0].(obj)["server_id"] != instance {
		t.Errorf("volume %v with attachments %v, want in-use with the attachment", vol["status"], vol["attachments"])
	}

	// Deleted: the volume available, served no more.
	if status, _ := apitest.Do(t, at27, "rita", "DELETE", url("/"+aid), nil); status != http.StatusForbidden {
		t.Errorf("a reader deleting: %d, want 403", status)
	}
	gone := apitest.Must(t, at27, http.StatusOK, "alice", "DELETE", url("/"+aid), nil)
	if l, ok := gone["attachments"].([]any); !ok || len(l) != 0 {
		t.Errorf("deleted: %v, want no attachments left", gone)
	}
	if _, ok := e.key(id); ok {
		t.Error("the volume is still served")
	}
	if got := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/volumes/"+id, nil)["volume"].(obj)["status"]; got != "available" {
		t.Errorf("volume %v, want available", got)
	}
	if status, _ := apitest.Do(t, at27, "alice", "GET", url("/"+aid), nil); status != http.StatusNotFound {
		t.Errorf("a deleted attachment: %d, want 404", status)
	}

	// Created connected in one step.
	a = apitest.Must(t, at27, http.StatusOK, "alice", "POST", url(""),
		obj{"attachment": obj{"volume_uuid": id, "instance_uuid": instance, "connector": obj{"host": "compute-9", "mode": "ro"}}})["attachment"].(obj)
	if ci, _ := a["connection_info"].(obj); a["status"] != "attaching" || a["attach_mode"] != "ro" || ci["driver_volume_type"] != "nbd" {
		t.Errorf("created with a connector: %v, want attaching ro with connection_info", a)
	}
}

// TestOSReserveKeepsWorking: os-reserve still holds a volume as
// attaching, without an attachment, and os-unreserve lets it go.
func TestOSReserveKeepsWorking(t *testing.T) {
	s := newServer(t)
	id := s.create(t, "alice", obj{"size": 1})["id"].(string)
	s.must(t, http.StatusAccepted, "alice", "POST", "/volume/v3/volumes/"+id+"/action", obj{"os-reserve": nil})
	v := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/volumes/"+id, nil)["volume"].(obj)
	if v["status"] != "attaching" || len(v["attachments"].([]any)) != 0 {
		t.Errorf("after os-reserve: %v with %v, want attaching with none", v["status"], v["attachments"])
	}
	if got := apitest.Must(t, versioned("3.27"), http.StatusOK, "alice", "GET", s.URL+"/volume/v3/attachments", nil)["attachments"].([]any); len(got) != 0 {
		t.Errorf("attachments of a volume os-reserve holds: %v, want none", got)
	}
	s.must(t, http.StatusAccepted, "alice", "POST", "/volume/v3/volumes/"+id+"/action", obj{"os-unreserve": nil})
	if got := s.must(t, http.StatusOK, "alice", "GET", "/volume/v3/volumes/"+id, nil)["volume"].(obj)["status"]; got != "available" {
		t.Errorf("after os-unreserve: %v, want available", got)
	}
}
