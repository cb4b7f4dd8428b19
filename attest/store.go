package attest

import (
	"context"

	"github.com/trustack/trustack"
)

// Store keeps what the verifier knows: white-lists, each host's TPM
// identity and attestation record, the EKs operators approved, and the
// hosts' attestation events. Its methods are safe for concurrent use.
type Store interface {
	// CreateWhitelist adds a white-list; ECONFLICT for a name in use.
	CreateWhitelist(ctx context.Context, wl *trustack.Whitelist) error
	// PutWhitelist adds a white-list or replaces the one of that name.
	PutWhitelist(ctx context.Context, wl *trustack.Whitelist) error
	// Whitelist returns a white-list; ENOTFOUND.
	Whitelist(ctx context.Context, name string) (*trustack.Whitelist, error)
	// Whitelists returns every white-list, by name.
	Whitelists(ctx context.Context) ([]*trustack.Whitelist, error)
	// DeleteWhitelist removes a white-list; ENOTFOUND.
	DeleteWhitelist(ctx context.Context, name string) error

	// HostAttestation returns a host's record; ENOTFOUND before it
	// first registered.
	HostAttestation(ctx context.Context, host string) (*trustack.HostAttestation, error)
	// HostAttestations returns every host's record, by host name.
	HostAttestations(ctx context.Context) ([]*trustack.HostAttestation, error)
	// UpdateHostAttestation reads a host's record (nil for none), has fn
	// change it (or make one) and writes it back, its Version moved on,
	// in one transaction; an error from fn changes nothing and is
	// returned as is. It returns the record written.
	UpdateHostAttestation(ctx context.Context, host string, fn func(*trustack.HostAttestation) (*trustack.HostAttestation, error)) (*trustack.HostAttestation, error)
	// DeleteHostAttestation forgets a host's record and events;
	// ENOTFOUND.
	DeleteHostAttestation(ctx context.Context, host string) error

	// ApproveEK records an operator's approval of an EK; approving one
	// approved already replaces the comment.
	ApproveEK(ctx context.Context, ek *trustack.ApprovedEK) error
	// ApprovedEK returns an approval by fingerprint; ENOTFOUND.
	ApprovedEK(ctx context.Context, fingerprint string) (*trustack.ApprovedEK, error)
	// ApprovedEKs returns every approval, by fingerprint.
	ApprovedEKs(ctx context.Context) ([]*trustack.ApprovedEK, error)
	// RevokeEK withdraws an approval; ENOTFOUND.
	RevokeEK(ctx context.Context, fingerprint string) error

	// AddAttestationEvents records events.
	AddAttestationEvents(ctx context.Context, events ...trustack.AttestationEvent) error
	// AttestationEvents returns a host's events, the latest limit of
	// them (all for 0), oldest first.
	AttestationEvents(ctx context.Context, host string, limit int) ([]trustack.AttestationEvent, error)
}
