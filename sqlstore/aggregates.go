package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/trustack/trustack"
)

// Host aggregates.

const aggregateColumns = "id, uuid, name, metadata, created_at, updated_at"

// scanAggregate reads a row of aggregateColumns.
func scanAggregate(row interface{ Scan(...any) error }) (*trustack.Aggregate, error) {
	a := new(trustack.Aggregate)
	err := row.Scan(&a.ID, &a.UUID, &a.Name, jsonColumn[map[string]string]{&a.Metadata}, timeColumn{&a.CreatedAt}, timeColumn{&a.UpdatedAt})
	return a, err
}

// Aggregates returns the host aggregates, by ID, with their hosts.
func (db *DB) Aggregates(ctx context.Context) ([]*trustack.Aggregate, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+aggregateColumns+` FROM aggregates WHERE deleted_at = 0 ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list aggregates: %w", err)
	}
	defer rows.Close()
	var out []*trustack.Aggregate
	byID := map[int]*trustack.Aggregate{}
	for rows.Next() {
		a, err := scanAggregate(rows)
		if err != nil {
			return nil, fmt.Errorf("list aggregates: %w", err)
		}
		out = append(out, a)
		byID[a.ID] = a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list aggregates: %w", err)
	}
	rows, err = db.read.QueryContext(ctx, `SELECT aggregate_id, host FROM aggregate_hosts ORDER BY host`)
	if err != nil {
		return nil, fmt.Errorf("list aggregate hosts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int
		var host string
		if err := rows.Scan(&id, &host); err != nil {
			return nil, fmt.Errorf("list aggregate hosts: %w", err)
		}
		if a := byID[id]; a != nil {
			a.Hosts = append(a.Hosts, host)
		}
	}
	return out, rows.Err()
}

// Aggregate returns a host aggregate with its hosts; ENOTFOUND.
func (db *DB) Aggregate(ctx context.Context, id int) (*trustack.Aggregate, error) {
	return getAggregate(ctx, db.read, id, "")
}

// getAggregate reads a living aggregate and its hosts; suffix ends the
// query, such as with FOR UPDATE.
func getAggregate(ctx context.Context, q querier, id int, suffix string) (*trustack.Aggregate, error) {
	a, err := scanAggregate(q.QueryRowContext(ctx, `SELECT `+aggregateColumns+` FROM aggregates WHERE id = $1 AND deleted_at = 0`+suffix, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "Aggregate %d could not be found.", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get aggregate %d: %w", id, err)
	}
	hosts, err := column(ctx, q, `SELECT host FROM aggregate_hosts WHERE aggregate_id = $1 ORDER BY host`, id)
	if err != nil {
		return nil, fmt.Errorf("get hosts of aggregate %d: %w", id, err)
	}
	if len(hosts) > 0 {
		a.Hosts = hosts
	}
	return a, nil
}

// CreateAggregate stores a new aggregate without hosts, giving it the next
// ID; ECONFLICT if a living aggregate has its name. Its zone is its
// metadata's, which, with no hosts yet, clashes with nothing.
func (db *DB) CreateAggregate(ctx context.Context, a *trustack.Aggregate) error {
	for attempt := 0; ; attempt++ {
		added := false
		err := db.inTx(ctx, func(q querier) error {
			if err := nameFree(ctx, q, a.Name, 0); err != nil {
				return err
			}
			if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) + 1 FROM aggregates`).Scan(&a.ID); err != nil {
				return fmt.Errorf("number aggregate %s: %w", a.Name, err)
			}
			res, err := q.ExecContext(ctx, `INSERT INTO aggregates (id, uuid, name, availability_zone, metadata, created_at, updated_at, deleted_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, 0) ON CONFLICT DO NOTHING`,
				a.ID, a.UUID, a.Name, a.AvailabilityZone(), jsonColumn[map[string]string]{&a.Metadata}, timeColumn{&a.CreatedAt}, timeColumn{&a.UpdatedAt})
			if err != nil {
				return fmt.Errorf("create aggregate %s: %w", a.Name, translate(err))
			}
			n, err := res.RowsAffected()
			added = n == 1
			return err
		})
		// Aggregates created at once may pick the same ID, or name; one
		// wins, and the others look again.
		switch {
		case err != nil || added:
			return err
		case attempt == 10:
			return trustack.Errorf(trustack.ECONFLICT, "Aggregate %s could not be given an ID or UUID of its own.", a.Name)
		}
	}
}

// nameFree gives ECONFLICT if a living aggregate other than except has
// the name.
func nameFree(ctx context.Context, q querier, name string, except int) error {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM aggregates WHERE name = $1 AND deleted_at = 0 AND id <> $2`, name, except).Scan(&n); err != nil {
		return fmt.Errorf("look up aggregate %s: %w", name, err)
	}
	if n > 0 {
		return trustack.Errorf(trustack.ECONFLICT, "Aggregate %s already exists.", name)
	}
	return nil
}

// UpdateAggregate reads an aggregate, lets fn change its name, metadata
// and hosts, and writes it back, in one transaction; fn may read through
// the store but not write through it. The hosts' availability zones follow
// (see RegisterHost), and a host whose zone changes moves to a new
// generation. ENOTFOUND for an unknown aggregate or host; ECONFLICT for a
// name in use; ECONFLICT with reason trustack.ReasonAggregateAction when
// a host would be in two zones (an aggregate of another zone has it), or
// when the aggregate's zone would change while its hosts run servers, as
// Nova refuses both.
func (db *DB) UpdateAggregate(ctx context.Context, id int, fn func(*trustack.Aggregate) error) (*trustack.Aggregate, error) {
	var out *trustack.Aggregate
	err := db.inTx(ctx, func(q querier) error {
		a, err := getAggregate(ctx, q, id, db.lockRow())
		if err != nil {
			return err
		}
		was := a.Hosts
		zone := a.AvailabilityZone()
		a.Hosts = slices.Clone(a.Hosts)
		if err := fn(a); err != nil {
			return err
		}
		slices.Sort(a.Hosts)
		if a.Hosts = slices.Compact(a.Hosts); len(a.Hosts) == 0 {
			a.Hosts = nil
		}
		if err := nameFree(ctx, q, a.Name, id); err != nil {
			return err
		}
		if err := zonesAgree(ctx, q, a); err != nil {
			return err
		}
		if z := a.AvailabilityZone(); z != zone {
			if err := noServers(ctx, q, a, was); err != nil {
				return err
			}
		}
		if _, err := q.ExecContext(ctx, `UPDATE aggregates SET name = $1, availability_zone = $2, metadata = $3, updated_at = $4 WHERE id = $5`,
			a.Name, a.AvailabilityZone(), jsonColumn[map[string]string]{&a.Metadata}, timeColumn{&a.UpdatedAt}, id); err != nil {
			return fmt.Errorf("update aggregate %d: %w", id, conflict("aggregate", translate(err)))
		}
		for _, h := range was {
			if !slices.Contains(a.Hosts, h) {
				if _, err := q.ExecContext(ctx, `DELETE FROM aggregate_hosts WHERE aggregate_id = $1 AND host = $2`, id, h); err != nil {
					return fmt.Errorf("remove host %s from aggregate %d: %w", h, id, err)
				}
			}
		}
		for _, h := range a.Hosts {
			if slices.Contains(was, h) {
				continue
			}
			var n int
			if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM hosts WHERE name = $1`, h).Scan(&n); err != nil {
				return fmt.Errorf("look up host %s: %w", h, err)
			}
			if n == 0 {
				return trustack.Errorf(trustack.ENOTFOUND, "Compute host %s could not be found.", h)
			}
			if _, err := q.ExecContext(ctx, `INSERT INTO aggregate_hosts (aggregate_id, host) VALUES ($1, $2)`, id, h); err != nil {
				return fmt.Errorf("add host %s to aggregate %d: %w", h, id, conflict("aggregate host", translate(err)))
			}
		}
		out = a
		return setZones(ctx, q, slices.Concat(was, a.Hosts))
	})
	return out, err
}

// zonesAgree gives ECONFLICT with reason trustack.ReasonAggregateAction
// if a has a zone and another living aggregate of another zone has one of
// its hosts.
func zonesAgree(ctx context.Context, q querier, a *trustack.Aggregate) error {
	zone := a.AvailabilityZone()
	if zone == "" || len(a.Hosts) == 0 {
		return nil
	}
	args := []any{a.ID, zone}
	marks := make([]string, len(a.Hosts))
	for i, h := range a.Hosts {
		args = append(args, h)
		marks[i] = fmt.Sprintf("$%d", len(args))
	}
	others, err := column(ctx, q, `SELECT DISTINCT a.availability_zone FROM aggregates a JOIN aggregate_hosts ah ON ah.aggregate_id = a.id
		WHERE a.id <> $1 AND a.deleted_at = 0 AND a.availability_zone <> '' AND a.availability_zone <> $2
		AND ah.host IN (`+strings.Join(marks, ", ")+`) ORDER BY a.availability_zone`, args...)
	if err != nil {
		return fmt.Errorf("check the zones of aggregate %d: %w", a.ID, err)
	}
	if len(others) > 0 {
		return trustack.Reasonf(trustack.ECONFLICT, trustack.ReasonAggregateAction,
			"Cannot put the hosts of aggregate %d in availability zone %s: one or more are already in availability zone(s) %s.", a.ID, zone, strings.Join(others, ", "))
	}
	return nil
}

// noServers gives ECONFLICT with reason trustack.ReasonAggregateAction
// if any of the hosts runs servers, whose zone would change under them.
func noServers(ctx context.Context, q querier, a *trustack.Aggregate, hosts []string) error {
	for _, h := range hosts {
		var n int
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM claims c JOIN hosts h ON h.id = c.host_id WHERE h.name = $1`, h).Scan(&n); err != nil {
			return fmt.Errorf("count the servers of host %s: %w", h, err)
		}
		if n > 0 {
			return trustack.Reasonf(trustack.ECONFLICT, trustack.ReasonAggregateAction,
				"Cannot change the availability zone of aggregate %d: its host %s runs %d servers in the zone it has now.", a.ID, h, n)
		}
	}
	return nil
}

// setZones sets the availability zone of each named host to its
// aggregates' zone, or, if none of them has one, to the zone it registered
// with; a host whose zone changes moves to a new generation, so that no
// claim made for its old zone succeeds. zonesAgree keeps a host's
// aggregates from naming two zones.
func setZones(ctx context.Context, q querier, names []string) error {
	for _, name := range names {
		var zone string
		err := q.QueryRowContext(ctx, `SELECT COALESCE((SELECT MIN(a.availability_zone) FROM aggregate_hosts ah JOIN aggregates a ON a.id = ah.aggregate_id
			WHERE ah.host = $1 AND a.deleted_at = 0 AND a.availability_zone <> ''), registered_zone) FROM hosts WHERE name = $1`, name).Scan(&zone)
		if err == nil {
			_, err = q.ExecContext(ctx, `UPDATE hosts SET availability_zone = $1, generation = generation + 1 WHERE name = $2 AND availability_zone <> $1`, zone, name)
		}
		if err != nil {
			return fmt.Errorf("set the availability zone of host %s: %w", name, err)
		}
	}
	return nil
}

// DeleteAggregate deletes an aggregate that has no hosts; ENOTFOUND, or
// ECONFLICT with reason trustack.ReasonAggregateAction while it has
// hosts. Its ID is not used again.
func (db *DB) DeleteAggregate(ctx context.Context, id int) error {
	return db.inTx(ctx, func(q querier) error {
		a, err := getAggregate(ctx, q, id, db.lockRow())
		if err != nil {
			return err
		}
		if len(a.Hosts) > 0 {
			return trustack.Reasonf(trustack.ECONFLICT, trustack.ReasonAggregateAction,
				"Cannot delete aggregate %d: it still has hosts %s; remove them first.", id, strings.Join(a.Hosts, ", "))
		}
		_, err = q.ExecContext(ctx, `UPDATE aggregates SET deleted_at = $1 WHERE id = $2`, db.Now().UnixMicro(), id)
		return err
	})
}
