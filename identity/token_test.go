package identity

import (
	"reflect"
	"testing"
	"time"
)

func TestPayloadRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 123456000, time.UTC)
	for _, p := range []payload{
		{UserID: "0123456789abcdef0123456789abcdef", Methods: []string{"password"}, ProjectID: "fedcba9876543210fedcba9876543210",
			IssuedAt: t0, ExpiresAt: t0.Add(time.Hour), AuditIDs: []string{"AAAAAAAAAAAAAAAAAAAAAA"}},
		{UserID: "admin", Methods: []string{"password", "token"}, DomainID: "default",
			IssuedAt: t0, ExpiresAt: t0.Add(time.Hour), AuditIDs: []string{"AAAAAAAAAAAAAAAAAAAAAA", "_____________________w"}},
		{UserID: "0123456789ABCDEF0123456789abcdef", Methods: []string{"token"}, IssuedAt: t0, ExpiresAt: t0, AuditIDs: []string{"AQIDBAUGBwgJCgsMDQ4PEA"}},
	} {
		b, err := p.marshal()
		if err != nil {
			t.Fatalf("marshal %+v: %v", p, err)
		}
		var got payload
		if err := got.unmarshal(b); err != nil {
			t.Fatalf("unmarshal %+v: %v", p, err)
		}
		if !reflect.DeepEqual(got, p) {
			t.Errorf("round trip: got %+v, want %+v", got, p)
		}
	}
}

// FuzzPayload checks that no input makes the decoder panic, and that what
// it accepts encodes back to the same bytes.
func FuzzPayload(f *testing.F) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	seed := payload{UserID: "0123456789abcdef0123456789abcdef", Methods: []string{"password"}, ProjectID: "p",
		IssuedAt: t0, ExpiresAt: t0.Add(time.Hour), AuditIDs: []string{"AAAAAAAAAAAAAAAAAAAAAA"}}
	b, _ := seed.marshal()
	f.Add(b)
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p payload
		if p.unmarshal(b) != nil {
			return
		}
		again, err := p.marshal()
		if err != nil {
			t.Fatalf("accepted %x but cannot encode %+v: %v", b, p, err)
		}
		if !reflect.DeepEqual(again, b) {
			t.Fatalf("accepted %x but it encodes as %x", b, again)
		}
	})
}
