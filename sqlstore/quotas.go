package sqlstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
)

// quotaTable keeps the quota limits of one service's projects that differ
// from the service's defaults (which are not the store's concern): a row
// per project and resource.
type quotaTable struct {
	name    string // the SQL table
	service string // for messages: "network"
}

var (
	computeQuotas = quotaTable{name: "quotas", service: "compute"}
	networkQuotas = quotaTable{name: "network_quotas", service: "network"}
	volumeQuotas  = quotaTable{name: "volume_quotas", service: "volume"}
)

// of returns a project's limits, by resource.
func (t quotaTable) of(ctx context.Context, db *DB, projectID string) (map[string]int, error) {
	all, err := t.read(ctx, db, `WHERE project_id = $1`, projectID)
	if err != nil {
		return nil, err
	}
	if all[projectID] == nil {
		return map[string]int{}, nil
	}
	return all[projectID], nil
}

// all returns every project's limits, by project.
func (t quotaTable) all(ctx context.Context, db *DB) (map[string]map[string]int, error) {
	return t.read(ctx, db, ``)
}

func (t quotaTable) read(ctx context.Context, db *DB, where string, args ...any) (map[string]map[string]int, error) {
	out := map[string]map[string]int{}
	err := eachRow(ctx, db.read, `SELECT project_id, resource, hard_limit FROM `+t.name+` `+where, args, func(scan func(...any) error) error {
		var project, resource string
		var limit int
		if err := scan(&project, &resource, &limit); err != nil {
			return err
		}
		if out[project] == nil {
			out[project] = map[string]int{}
		}
		out[project][resource] = limit
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s quotas: %w", t.service, err)
	}
	return out, nil
}

// set sets limits of a project, replacing those it had of the same
// resources.
func (t quotaTable) set(ctx context.Context, db *DB, projectID string, limits map[string]int) error {
	return db.inTx(ctx, func(q querier) error {
		for _, r := range slices.Sorted(maps.Keys(limits)) {
			if _, err := q.ExecContext(ctx, `INSERT INTO `+t.name+` (project_id, resource, hard_limit) VALUES ($1, $2, $3)
				ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit`, projectID, r, limits[r]); err != nil {
				return fmt.Errorf("set %s quota %s of %s: %w", t.service, r, projectID, err)
			}
		}
		return nil
	})
}

// clear returns a project to the default limits.
func (t quotaTable) clear(ctx context.Context, db *DB, projectID string) error {
	if _, err := db.write.ExecContext(ctx, `DELETE FROM `+t.name+` WHERE project_id = $1`, projectID); err != nil {
		return fmt.Errorf("delete %s quotas of %s: %w", t.service, projectID, err)
	}
	return nil
}
