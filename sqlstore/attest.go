package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/trustack/trustack"
)

// The store keeps what attest.Store asks; as for acaas.Store, sqlstore
// does not import attest (storetest.Store holds it, and checks at compile
// time).

var (
	hostAttestations = &table[trustack.HostAttestation]{
		name: "host_attestations", kind: "host attestation record", order: "host",
		columns: []string{"host", "cid", "registered_at", "ek_cert", "ak_public", "credential_key", "mode",
			"verdict_state", "verdict_reasons", "verdict_whitelist", "verdict_at", "verdict_by", "failing_since", "revoked", "checkpoint", "version"},
		fields: func(a *trustack.HostAttestation) []any {
			return []any{&a.Host, &a.CID, timeColumn{&a.RegisteredAt}, bytesColumn{&a.EKCert}, bytesColumn{&a.AKPublic}, bytesColumn{&a.CredentialKey}, &a.Mode,
				&a.Verdict.State, jsonColumn[[]string]{&a.Verdict.Reasons}, &a.Verdict.Whitelist, timeColumn{&a.Verdict.At}, &a.Verdict.By, timeColumn{&a.FailingSince},
				&a.Revoked, bytesColumn{&a.Checkpoint}, &a.Version}
		},
	}
	approvedEKs = &table[trustack.ApprovedEK]{
		name: "approved_eks", kind: "approved EK", order: "fingerprint",
		columns: []string{"fingerprint", "comment", "approved_at"},
		fields: func(e *trustack.ApprovedEK) []any {
			return []any{&e.Fingerprint, &e.Comment, timeColumn{&e.ApprovedAt}}
		},
	}
)

// updateHostAttestation writes every column of a host's record.
var updateHostAttestation = func() string {
	sets := make([]string, 0, len(hostAttestations.columns)-1)
	for i, c := range hostAttestations.columns[1:] {
		sets = append(sets, fmt.Sprintf("%s = $%d", c, i+2))
	}
	return `UPDATE host_attestations SET ` + strings.Join(sets, ", ") + ` WHERE host = $1`
}()

func whitelistNotFound(name string) error {
	return trustack.Errorf(trustack.ENOTFOUND, "White-list %s does not exist.", name)
}

func hostAttestationNotFound(host string) error {
	return trustack.Errorf(trustack.ENOTFOUND, "Host %s has not registered for attestation.", host)
}

func ekNotFound(fingerprint string) error {
	return trustack.Errorf(trustack.ENOTFOUND, "EK %s is not approved.", fingerprint)
}

// White-lists.

// whitelistColumns are the columns a white-list is read from, in the
// order of whitelistFields.
const whitelistColumns = `name, files, exclude, boot_aggregate`

// whitelistFields returns wl's fields for whitelistColumns. An empty map
// of files or list of exclusions reads back as nil.
func whitelistFields(wl *trustack.Whitelist) []any {
	return []any{&wl.Name, jsonColumn[map[string][]string]{&wl.Files}, jsonColumn[[]string]{&wl.Exclude}, &wl.BootAggregate}
}

// CreateWhitelist adds a white-list; ECONFLICT for a name in use.
func (db *DB) CreateWhitelist(ctx context.Context, wl *trustack.Whitelist) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO whitelists (`+whitelistColumns+`, updated_at) VALUES ($1, $2, $3, $4, $5)`,
		append(whitelistFields(wl), db.Now().UnixMicro())...)
	if err = translate(err); err != nil {
		if isConstraint(err, true) {
			return trustack.Errorf(trustack.ECONFLICT, "White-list %s already exists.", wl.Name)
		}
		return fmt.Errorf("create white-list %s: %w", wl.Name, err)
	}
	return nil
}

// PutWhitelist adds a white-list or replaces the one of that name, whole.
func (db *DB) PutWhitelist(ctx context.Context, wl *trustack.Whitelist) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO whitelists (`+whitelistColumns+`, updated_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (name) DO UPDATE SET files = excluded.files, exclude = excluded.exclude,
		boot_aggregate = excluded.boot_aggregate, updated_at = excluded.updated_at`,
		append(whitelistFields(wl), db.Now().UnixMicro())...)
	if err != nil {
		return fmt.Errorf("put white-list %s: %w", wl.Name, translate(err))
	}
	return nil
}

// Whitelist returns a white-list; ENOTFOUND.
func (db *DB) Whitelist(ctx context.Context, name string) (*trustack.Whitelist, error) {
	wl := new(trustack.Whitelist)
	err := db.read.QueryRowContext(ctx, `SELECT `+whitelistColumns+` FROM whitelists WHERE name = $1`, name).Scan(whitelistFields(wl)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, whitelistNotFound(name)
	}
	if err != nil {
		return nil, fmt.Errorf("get white-list %s: %w", name, err)
	}
	return wl, nil
}

// Whitelists returns every white-list, by name.
func (db *DB) Whitelists(ctx context.Context) ([]*trustack.Whitelist, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+whitelistColumns+` FROM whitelists`)
	if err != nil {
		return nil, fmt.Errorf("list white-lists: %w", err)
	}
	defer rows.Close()
	var out []*trustack.Whitelist
	for rows.Next() {
		wl := new(trustack.Whitelist)
		if err := rows.Scan(whitelistFields(wl)...); err != nil {
			return nil, fmt.Errorf("list white-lists: %w", err)
		}
		out = append(out, wl)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list white-lists: %w", err)
	}
	// Sorted here: PostgreSQL's collation may order names otherwise than
	// Go does.
	slices.SortFunc(out, func(a, b *trustack.Whitelist) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteWhitelist removes a white-list; ENOTFOUND.
func (db *DB) DeleteWhitelist(ctx context.Context, name string) error {
	if err := db.deleteOne(ctx, `DELETE FROM whitelists WHERE name = $1`, whitelistNotFound(name), name); err != nil {
		if trustack.ErrorCode(err) == trustack.ENOTFOUND {
			return err
		}
		return fmt.Errorf("delete white-list %s: %w", name, err)
	}
	return nil
}

// Host attestation records.

// HostAttestation returns a host's record; ENOTFOUND before it first
// registered.
func (db *DB) HostAttestation(ctx context.Context, host string) (*trustack.HostAttestation, error) {
	return hostAttestation(ctx, db.read, host, "")
}

// hostAttestation reads a host's record with suffix (such as FOR UPDATE)
// after the query; ENOTFOUND.
func hostAttestation(ctx context.Context, q querier, host, suffix string) (*trustack.HostAttestation, error) {
	a, err := hostAttestations.getSQL(ctx, q, host, suffix)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		return nil, hostAttestationNotFound(host)
	}
	return a, err
}

// HostAttestations returns every host's record, by host name.
func (db *DB) HostAttestations(ctx context.Context) ([]*trustack.HostAttestation, error) {
	list, err := hostAttestations.list(ctx, db.read, where{})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, func(a, b *trustack.HostAttestation) int { return cmp.Compare(a.Host, b.Host) })
	return list, nil
}

// UpdateHostAttestation reads a host's record (nil for none), has fn
// change it or make one, and writes what fn returns, its Version moved on
// (1 for a new record), in one transaction; fn runs once, and concurrent
// updates of a host run one after the other. fn may leave the record's
// Host empty; naming another host, or returning no record, is EINVALID.
// An error from fn changes nothing and is returned as is. It returns the
// record as written. EINVALID for an empty host name.
func (db *DB) UpdateHostAttestation(ctx context.Context, host string, fn func(*trustack.HostAttestation) (*trustack.HostAttestation, error)) (*trustack.HostAttestation, error) {
	if host == "" {
		return nil, trustack.Errorf(trustack.EINVALID, "An attestation record needs the name of its host.")
	}
	var out *trustack.HostAttestation
	err := db.inTx(ctx, func(q querier) error {
		cur, err := db.lockHostAttestation(ctx, q, host)
		if err != nil {
			return err
		}
		var version int64 // that of the placeholder, when there is no record
		if cur != nil {
			version = cur.Version
		}
		next, err := fn(cur)
		switch {
		case err != nil:
			return err
		case next == nil:
			return trustack.Errorf(trustack.EINVALID, "An update of the attestation record of host %s returned no record.", host)
		case next.Host != "" && next.Host != host:
			return trustack.Errorf(trustack.EINVALID, "The attestation record of host %s cannot be moved to host %s.", host, next.Host)
		}
		w := *next
		w.Host, w.Version = host, version+1
		if _, err := q.ExecContext(ctx, updateHostAttestation, hostAttestations.fields(&w)...); err != nil {
			return fmt.Errorf("update attestation record of host %s: %w", host, err)
		}
		// Read back, so that the caller gets what a read will return.
		out, err = hostAttestation(ctx, q, host, "")
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// lockHostAttestation reads a host's record, locking its row until the
// transaction ends, or returns nil if it has none. When it has none, it
// locks a placeholder row (version 0) that the caller must overwrite or
// roll back: FOR UPDATE locks no row that is not there, and two first
// registrations must not both believe they came first.
func (db *DB) lockHostAttestation(ctx context.Context, q querier, host string) (*trustack.HostAttestation, error) {
	cur, err := hostAttestation(ctx, q, host, db.lockRow())
	if trustack.ErrorCode(err) != trustack.ENOTFOUND {
		return cur, err
	}
	// On PostgreSQL, a concurrent transaction's placeholder makes this
	// wait for it to end; if it wrote a record, this inserts nothing and
	// the read below locks that record.
	_, err = q.ExecContext(ctx, `INSERT INTO host_attestations (host, cid, registered_at, ek_cert, ak_public, credential_key, mode,
		verdict_state, verdict_reasons, verdict_whitelist, verdict_at, failing_since, revoked, checkpoint, version)
		VALUES ($1, '', 0, $2, $2, $2, '', '', '[]', '', 0, 0, FALSE, $2, 0) ON CONFLICT (host) DO NOTHING`, host, []byte{})
	if err != nil {
		return nil, fmt.Errorf("lock attestation record of host %s: %w", host, err)
	}
	if cur, err = hostAttestation(ctx, q, host, db.lockRow()); err != nil {
		return nil, err
	}
	if cur.Version == 0 {
		return nil, nil
	}
	return cur, nil
}

// DeleteHostAttestation forgets a host's record and events; ENOTFOUND if
// it has no record.
func (db *DB) DeleteHostAttestation(ctx context.Context, host string) error {
	return db.inTx(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, `DELETE FROM host_attestations WHERE host = $1`, host)
		if err != nil {
			return fmt.Errorf("delete attestation record of host %s: %w", host, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return hostAttestationNotFound(host)
		}
		for _, table := range []string{"attestation_events", "attestation_event_seqs"} {
			if _, err := q.ExecContext(ctx, `DELETE FROM `+table+` WHERE host = $1`, host); err != nil {
				return fmt.Errorf("delete attestation events of host %s: %w", host, err)
			}
		}
		return nil
	})
}

// Approved EKs.

// ApproveEK records an operator's approval of an EK; approving one
// approved already replaces its comment and time.
func (db *DB) ApproveEK(ctx context.Context, ek *trustack.ApprovedEK) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO approved_eks (fingerprint, comment, approved_at) VALUES ($1, $2, $3)
		ON CONFLICT (fingerprint) DO UPDATE SET comment = excluded.comment, approved_at = excluded.approved_at`,
		approvedEKs.fields(ek)...)
	if err != nil {
		return fmt.Errorf("approve EK %s: %w", ek.Fingerprint, translate(err))
	}
	return nil
}

// ApprovedEK returns an approval by fingerprint; ENOTFOUND.
func (db *DB) ApprovedEK(ctx context.Context, fingerprint string) (*trustack.ApprovedEK, error) {
	ek, err := approvedEKs.get(ctx, db.read, fingerprint)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		return nil, ekNotFound(fingerprint)
	}
	return ek, err
}

// ApprovedEKs returns every approval, by fingerprint.
func (db *DB) ApprovedEKs(ctx context.Context) ([]*trustack.ApprovedEK, error) {
	list, err := approvedEKs.list(ctx, db.read, where{})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, func(a, b *trustack.ApprovedEK) int { return cmp.Compare(a.Fingerprint, b.Fingerprint) })
	return list, nil
}

// RevokeEK withdraws an approval; ENOTFOUND.
func (db *DB) RevokeEK(ctx context.Context, fingerprint string) error {
	if err := db.deleteOne(ctx, `DELETE FROM approved_eks WHERE fingerprint = $1`, ekNotFound(fingerprint), fingerprint); err != nil {
		if trustack.ErrorCode(err) == trustack.ENOTFOUND {
			return err
		}
		return fmt.Errorf("revoke EK %s: %w", fingerprint, err)
	}
	return nil
}

// Attestation events.

// AddAttestationEvents records events, in one transaction; a host's
// events keep the order they were added in among those of the same time.
func (db *DB) AddAttestationEvents(ctx context.Context, events ...trustack.AttestationEvent) error {
	if len(events) == 0 {
		return nil
	}
	byHost := map[string][]trustack.AttestationEvent{}
	for _, e := range events {
		byHost[e.Host] = append(byHost[e.Host], e)
	}
	// Hosts in order, so that two calls for the same hosts take their
	// counters' locks in the same order and never wait for each other in
	// a circle.
	hosts := make([]string, 0, len(byHost))
	for h := range byHost {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	return db.inTx(ctx, func(q querier) error {
		for _, host := range hosts {
			list := byHost[host]
			var last int64
			err := q.QueryRowContext(ctx, `INSERT INTO attestation_event_seqs (host, last_seq) VALUES ($1, $2)
				ON CONFLICT (host) DO UPDATE SET last_seq = attestation_event_seqs.last_seq + excluded.last_seq RETURNING last_seq`,
				host, int64(len(list))).Scan(&last)
			if err != nil {
				return fmt.Errorf("number attestation events of host %s: %w", host, err)
			}
			for i, e := range list {
				seq := last - int64(len(list)) + 1 + int64(i)
				if _, err := q.ExecContext(ctx, `INSERT INTO attestation_events (host, seq, at, kind, message) VALUES ($1, $2, $3, $4, $5)`,
					host, seq, timeColumn{&e.At}, e.Kind, e.Message); err != nil {
					return fmt.Errorf("add attestation event of host %s: %w", host, translate(err))
				}
			}
		}
		return nil
	})
}

// AttestationEvents returns a host's events, the latest limit of them (all
// for 0), oldest first: by time, and in the order they were added among
// those of the same time. EINVALID for a negative limit.
func (db *DB) AttestationEvents(ctx context.Context, host string, limit int) ([]trustack.AttestationEvent, error) {
	if limit < 0 {
		return nil, trustack.Errorf(trustack.EINVALID, "The number of attestation events to list cannot be negative (got %d).", limit)
	}
	query, args := `SELECT at, kind, message FROM attestation_events WHERE host = $1 ORDER BY at DESC, seq DESC`, []any{host}
	if limit > 0 {
		query, args = query+` LIMIT $2`, append(args, limit)
	}
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list attestation events of host %s: %w", host, err)
	}
	defer rows.Close()
	var out []trustack.AttestationEvent
	for rows.Next() {
		e := trustack.AttestationEvent{Host: host}
		if err := rows.Scan(timeColumn{&e.At}, &e.Kind, &e.Message); err != nil {
			return nil, fmt.Errorf("list attestation events of host %s: %w", host, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list attestation events of host %s: %w", host, err)
	}
	slices.Reverse(out)
	return out, nil
}
