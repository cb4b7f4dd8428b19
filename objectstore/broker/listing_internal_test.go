package broker

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestListQueryPlan checks that every page of a listing seeks through
// the (deleted, name) index and reads rows in its order: a page then
// costs its own rows, however many the container holds.
func TestListQueryPlan(t *testing.T) {
	c := NewCache(0)
	defer c.Close()
	dir := t.TempDir()
	cont, _, err := c.CreateContainer(filepath.Join(dir, "c.db"), "a", "c", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer cont.Close()
	acct, _, err := c.CreateAccount(filepath.Join(dir, "a.db"), "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer acct.Close()
	for _, tt := range []struct {
		d            *db
		table, index string
	}{{&cont.db, "object", "object_deleted_name"}, {&acct.db, "container", "container_deleted_name"}} {
		for _, b := range []struct {
			lo, hi          string
			loIncl, reverse bool
		}{{"", "", false, false}, {"m", "", false, false}, {"m", "", true, false}, {"", "n", false, true}, {"m", "n", true, true}} {
			query, args := listQuery(tt.table, "name", b.lo, b.hi, b.loIncl, b.reverse)
			rows, err := tt.d.h.read.Query("EXPLAIN QUERY PLAN "+query, append(args, 10)...)
			if err != nil {
				t.Fatal(err)
			}
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			rows.Close()
			p := strings.Join(plan, "; ")
			if !strings.Contains(p, "USING INDEX "+tt.index) && !strings.Contains(p, "USING COVERING INDEX "+tt.index) || strings.Contains(p, "TEMP B-TREE") {
				t.Errorf("%s: plan %q, want a search of %s without sorting", query, p, tt.index)
			}
			if (b.lo != "" || b.hi != "") && !strings.Contains(p, "AND name") {
				t.Errorf("%s: plan %q, want it to seek by name", query, p)
			}
		}
		// Merge's look-up of a name.
		var id, parent, unused int
		var p string
		err := tt.d.h.read.QueryRow("EXPLAIN QUERY PLAN SELECT rowid FROM "+tt.table+" WHERE deleted IN (0, 1) AND name = ?", "x").
			Scan(&id, &parent, &unused, &p)
		if err != nil || !strings.Contains(p, tt.index+" (deleted=? AND name=?)") {
			t.Errorf("look-up of a name: plan %q, %v; want a search of %s by name", p, err, tt.index)
		}
	}
}
