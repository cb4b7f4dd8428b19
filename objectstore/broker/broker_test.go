package broker_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/broker"
)

func newCache(tb testing.TB, size int) *broker.Cache {
	tb.Helper()
	c := broker.NewCache(size)
	tb.Cleanup(func() { c.Close() })
	return c
}

func newContainer(tb testing.TB, c *broker.Cache, path string) *broker.Container {
	tb.Helper()
	d, created, err := c.CreateContainer(path, "AUTH_a", "c", 100)
	if err != nil || !created {
		tb.Fatalf("create container: created %v, %v", created, err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

func names[T any](entries []T, name func(T) string) string {
	var s []string
	for _, e := range entries {
		s = append(s, name(e))
	}
	return strings.Join(s, " ")
}

func withoutRowIDs(objects []broker.Object) []broker.Object {
	for i := range objects {
		objects[i].RowID = 0
	}
	return objects
}

func objectName(o broker.Object) string {
	if o.Subdir {
		return "[" + o.Name + "]"
	}
	return o.Name
}

func TestCreateContainerStatus(t *testing.T) {
	c := newCache(t, 0)
	path := filepath.Join(t.TempDir(), "c.db")
	if _, err := c.Container(path); err != broker.ErrNotFound {
		t.Fatalf("open missing: got %v, want ErrNotFound", err)
	}
	d := newContainer(t, c, path)
	steps := []struct {
		name        string
		put, delete objectstore.Timestamp
		wantCreated bool
		wantDeleted bool
	}{
		{name: "PUT again", put: 200, wantCreated: false},
		{name: "DELETE", delete: 300, wantDeleted: true},
		{name: "older PUT than the DELETE", put: 250, wantDeleted: true},
		{name: "newer PUT recreates", put: 400, wantCreated: true},
	}
	for _, s := range steps {
		if s.delete != 0 {
			if _, err := d.Delete(s.delete); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		} else {
			d2, created, err := c.CreateContainer(path, "AUTH_a", "c", s.put)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			d2.Close()
			if created != s.wantCreated {
				t.Errorf("%s: created %v, want %v", s.name, created, s.wantCreated)
			}
		}
		info, err := d.Info()
		if err != nil {
			t.Fatal(err)
		}
		if st := info.Status; st.Deleted() != s.wantDeleted {
			t.Errorf("%s: deleted %v, want %v (%+v)", s.name, st.Deleted(), s.wantDeleted, st)
		}
	}
	info, _ := d.Info()
	if info.Put != 400 || info.Delete != 300 || info.Created != 400 || info.StatusChanged != 400 {
		t.Errorf("got %+v, want put 400, delete 300, created and status changed at 400", info.Status)
	}
}

func TestObjectsNewestWins(t *testing.T) {
	d := newContainer(t, newCache(t, 0), filepath.Join(t.TempDir(), "c.db"))
	steps := []struct {
		name        string
		o           broker.Object
		wantChanged bool
		wantCount   int64
		wantBytes   int64
	}{
		{"put a", broker.Object{Name: "a", Created: 10, Size: 100, ETag: "e1"}, true, 1, 100},
		{"put b", broker.Object{Name: "b", Created: 10, Size: 50}, true, 2, 150},
		{"overwrite a", broker.Object{Name: "a", Created: 20, Size: 7, ETag: "e2"}, true, 2, 57},
		{"older put of a, arriving late", broker.Object{Name: "a", Created: 15, Size: 1000}, false, 2, 57},
		{"same put of a again", broker.Object{Name: "a", Created: 20, Size: 7, ETag: "e2"}, false, 2, 57},
		{"older delete of a", broker.Object{Name: "a", Created: 19, Deleted: true}, false, 2, 57},
		{"delete b", broker.Object{Name: "b", Created: 30, Deleted: true}, true, 1, 7},
		{"older put of b after its delete", broker.Object{Name: "b", Created: 25, Size: 5}, false, 1, 7},
		{"delete of a never-seen object", broker.Object{Name: "z", Created: 5, Deleted: true}, true, 1, 7},
		{"older put of z than its delete", broker.Object{Name: "z", Created: 4, Size: 3}, false, 1, 7},
		{"newer put of b", broker.Object{Name: "b", Created: 40, Size: 3}, true, 2, 10},
	}
	for _, s := range steps {
		changed, err := d.PutObject(s.o)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		info, err := d.Info()
		if err != nil {
			t.Fatal(err)
		}
		if changed != s.wantChanged || info.Objects != s.wantCount || info.Bytes != s.wantBytes {
			t.Errorf("%s: got changed %v, %d objects, %d bytes; want %v, %d, %d",
				s.name, changed, info.Objects, info.Bytes, s.wantChanged, s.wantCount, s.wantBytes)
		}
	}
	got, err := d.List(broker.ListOptions{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := []broker.Object{{Name: "a", Created: 20, Size: 7, ETag: "e2"}, {Name: "b", Created: 40, Size: 3}}
	if !reflect.DeepEqual(withoutRowIDs(got), want) {
		t.Errorf("listing: got %+v, want %+v", got, want)
	}
}

// TestConcurrentPuts: rows written to one container at once, which
// share transactions, each get their own outcome, and the counts add up.
func TestConcurrentPuts(t *testing.T) {
	d := newContainer(t, newCache(t, 0), filepath.Join(t.TempDir(), "c.db"))
	const n = 200
	changed := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Odd ones are older copies of the even ones' names: only
			// the newer of each pair may count, whichever comes first.
			name, created := fmt.Sprintf("o%03d", i/2), objectstore.Timestamp(10+i%2)
			var err error
			if changed[i], err = d.PutObject(broker.Object{Name: name, Created: 20 - created, Size: int64(i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	info, err := d.Info()
	if err != nil || info.Objects != n/2 {
		t.Fatalf("%d objects (%v), want %d", info.Objects, err, n/2)
	}
	var bytes int64
	for i := 0; i < n; i += 2 {
		if !changed[i] {
			t.Errorf("the newer row of o%03d did not count", i/2)
		}
		bytes += int64(i)
	}
	if info.Bytes != bytes {
		t.Errorf("%d bytes used, want %d: the newer rows' sizes", info.Bytes, bytes)
	}
}

func TestDeleteNonEmpty(t *testing.T) {
	d := newContainer(t, newCache(t, 0), filepath.Join(t.TempDir(), "c.db"))
	d.PutObject(broker.Object{Name: "o", Created: 200, Size: 1})
	if _, err := d.Delete(300); err != broker.ErrNotEmpty {
		t.Fatalf("delete with an object: got %v, want ErrNotEmpty", err)
	}
	d.PutObject(broker.Object{Name: "o", Created: 250, Deleted: true})
	st, err := d.Delete(300)
	if err != nil || !st.Deleted() {
		t.Fatalf("delete once empty: got %+v, %v; want deleted", st, err)
	}
}

func TestListing(t *testing.T) {
	d := newContainer(t, newCache(t, 0), filepath.Join(t.TempDir(), "c.db"))
	all := []string{"a", "a/", "a/b", "a/b/c", "a/b/d", "a/c", "b", "b/x", "ba", "c", "d/e/f", "é", "日本"}
	var rows []broker.Object
	for _, n := range all {
		rows = append(rows, broker.Object{Name: n, Created: 200})
	}
	rows = append(rows, broker.Object{Name: "a/gone", Created: 200, Deleted: true})
	if _, err := d.Merge(rows); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    broker.ListOptions
		want string
	}{
		{"all", broker.ListOptions{}, strings.Join(all, " ")},
		{"limit", broker.ListOptions{Limit: 3}, "a a/ a/b"},
		{"zero limit", broker.ListOptions{Limit: -1}, ""},
		{"marker", broker.ListOptions{Marker: "b"}, "b/x ba c d/e/f é 日本"},
		{"end marker", broker.ListOptions{EndMarker: "a/c"}, "a a/ a/b a/b/c a/b/d"},
		{"marker and end marker", broker.ListOptions{Marker: "a/b", EndMarker: "b/x"}, "a/b/c a/b/d a/c b"},
		{"prefix", broker.ListOptions{Prefix: "a/b"}, "a/b a/b/c a/b/d"},
		{"prefix matching nothing", broker.ListOptions{Prefix: "zz"}, ""},
		{"prefix with marker before it", broker.ListOptions{Prefix: "b", Marker: "a"}, "b b/x ba"},
		{"delimiter", broker.ListOptions{Delimiter: "/"}, "a [a/] b [b/] ba c [d/] é 日本"},
		{"delimiter and limit", broker.ListOptions{Delimiter: "/", Limit: 4}, "a [a/] b [b/]"},
		{"delimiter, next page", broker.ListOptions{Delimiter: "/", Marker: "a/"}, "b [b/] ba c [d/] é 日本"},
		{"prefix and delimiter", broker.ListOptions{Prefix: "a/", Delimiter: "/"}, "a/ a/b [a/b/] a/c"},
		{"nested prefix and delimiter", broker.ListOptions{Prefix: "a/b/", Delimiter: "/"}, "a/b/c a/b/d"},
		{"deeper prefix and delimiter", broker.ListOptions{Prefix: "d/", Delimiter: "/"}, "[d/e/]"},
		{"reverse", broker.ListOptions{Reverse: true, Limit: 4}, "日本 é d/e/f c"},
		{"reverse with markers", broker.ListOptions{Reverse: true, Marker: "b", EndMarker: "a/b"}, "a/c a/b/d a/b/c"},
		{"reverse with delimiter", broker.ListOptions{Reverse: true, Delimiter: "/"}, "日本 é [d/] c ba [b/] b [a/] a"},
		{"reverse with prefix and delimiter", broker.ListOptions{Reverse: true, Prefix: "a/", Delimiter: "/"}, "a/c [a/b/] a/b a/"},
		{"multibyte delimiter", broker.ListOptions{Delimiter: "本"}, strings.Join(all[:12], " ") + " [日本]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.o.Limit == 0 {
				tt.o.Limit = 100
			}
			got, err := d.List(tt.o)
			if err != nil {
				t.Fatal(err)
			}
			if s := names(got, objectName); s != tt.want {
				t.Errorf("got %q, want %q", s, tt.want)
			}
		})
	}
}

// fill adds n objects of a byte each to the container whose database is
// at path, named dNN/oNNNNNN with a thousand to a dNN/, in one SQL
// statement: Merge takes seconds for as many under the race detector.
func fill(tb testing.TB, path string, n int) {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	_, err = db.Exec(`WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i WHERE n + 1 < ?1)
		INSERT INTO object (name, created_at, size, content_type, etag, deleted)
		SELECT printf('d%02d/o%06d', n / 1000, n), 200, 1, 'text/plain', '', 0 FROM i;
		UPDATE info SET object_count = object_count + ?1, bytes_used = bytes_used + ?1`, n)
	if err != nil {
		tb.Fatal(err)
	}
}

// TestListingPages lists 100,000 objects in pages of 10,000, and a
// delimiter's 100 subdirs of 1,000 objects each: a listing seeks, so
// neither reads more rows than it returns (see TestListQueryPlan).
func TestListingPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	d := newContainer(t, newCache(t, 0), path)
	const n = 100_000
	fill(t, path, n)
	rows := make([]broker.Object, n)
	for i := range rows {
		rows[i] = broker.Object{Name: fmt.Sprintf("d%02d/o%06d", i/1000, i), Created: 200, Size: 1, ContentType: "text/plain"}
	}
	start := time.Now()
	marker, pages, seen := "", 0, 0
	for {
		page, err := d.List(broker.ListOptions{Marker: marker, Limit: objectstore.ContainerListingLimit})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, o := range page {
			if o.Name != rows[seen].Name {
				t.Fatalf("entry %d: got %q, want %q", seen, o.Name, rows[seen].Name)
			}
			seen++
		}
		pages++
		marker = page[len(page)-1].Name
	}
	if seen != n || pages != 10 {
		t.Errorf("got %d entries in %d pages, want %d in 10", seen, pages, n)
	}
	t.Logf("listed %d rows in %d pages in %v", seen, pages, time.Since(start))
	start = time.Now()
	dirs, err := d.List(broker.ListOptions{Delimiter: "/", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != 100 || dirs[0].Name != "d00/" || dirs[99].Name != "d99/" {
		t.Errorf("got %d subdirs (%s ...), want 100 from d00/ to d99/", len(dirs), names(dirs[:min(3, len(dirs))], objectName))
	}
	t.Logf("listed 100 subdirs of %d rows in %v", n, time.Since(start))
}

func TestMetadataNewestWins(t *testing.T) {
	d := newContainer(t, newCache(t, 0), filepath.Join(t.TempDir(), "c.db"))
	steps := []map[string]broker.Meta{
		{"X-Container-Meta-A": {"1", 10}, "X-Container-Meta-B": {"2", 10}},
		{"X-Container-Meta-A": {"old", 5}},    // older: ignored
		{"X-Container-Meta-B": {"", 20}},      // removed
		{"X-Container-Meta-B": {"back?", 15}}, // older than the removal: ignored
		{"X-Container-Meta-C": {"3", 20}},
	}
	for _, m := range steps {
		if err := d.UpdateMetadata(m); err != nil {
			t.Fatal(err)
		}
	}
	got, err := d.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]broker.Meta{"X-Container-Meta-A": {"1", 10}, "X-Container-Meta-B": {"", 20}, "X-Container-Meta-C": {"3", 20}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev", "c.db")
	c := broker.NewCache(0)
	d := newContainer(t, c, path)
	d.PutObject(broker.Object{Name: "o", Created: 200, Size: 5, ContentType: "text/plain", ETag: "x"})
	d.UpdateMetadata(map[string]broker.Meta{"X-Container-Read": {".r:*", 200}})
	d.SetAccountNodes(broker.AccountNodes{Hosts: []string{"h1:1", "h2:2"}, Devices: []string{"d1", "d2"}, Partition: 7})
	d.MarkReported(broker.Report{Put: 100, Objects: 1, Bytes: 5})
	wantInfo, _ := d.Info()
	wantList, _ := d.List(broker.ListOptions{Limit: 10})
	wantMeta, _ := d.Metadata()
	d.Close()
	c.Close()

	d, err := newCache(t, 0).Container(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	info, _ := d.Info()
	list, _ := d.List(broker.ListOptions{Limit: 10})
	meta, _ := d.Metadata()
	if !reflect.DeepEqual(info, wantInfo) || !reflect.DeepEqual(list, wantList) || !reflect.DeepEqual(meta, wantMeta) {
		t.Errorf("reopened: got %+v %+v %+v, want %+v %+v %+v", info, list, meta, wantInfo, wantList, wantMeta)
	}
	if info.Objects != 1 || info.AccountNodes.Partition != 7 || len(info.AccountNodes.Hosts) != 2 {
		t.Errorf("reopened info %+v: want 1 object and two account nodes of partition 7", info)
	}
}

func TestCacheEvictsIdle(t *testing.T) {
	c := newCache(t, 2)
	dir := t.TempDir()
	held := newContainer(t, c, filepath.Join(dir, "0.db"))
	for i := 1; i <= 3; i++ { // evicts 0.db, held
		newContainer(t, c, filepath.Join(dir, fmt.Sprint(i, ".db"))).Close()
	}
	if _, err := held.PutObject(broker.Object{Name: "o", Created: 200}); err != nil {
		t.Errorf("a database evicted while in use: got %v, want it usable until closed", err)
	}
}

// TestRowsSinceMerge copies a container's changes to another replica in
// batches, as the replicator will, and checks they agree.
func TestRowsSinceMerge(t *testing.T) {
	c := newCache(t, 0)
	dir := t.TempDir()
	a, b := newContainer(t, c, filepath.Join(dir, "a.db")), newContainer(t, c, filepath.Join(dir, "b.db"))
	for i := range 10 {
		a.PutObject(broker.Object{Name: fmt.Sprint("o", i), Created: 200, Size: int64(i)})
	}
	a.PutObject(broker.Object{Name: "o3", Created: 300, Deleted: true})
	b.PutObject(broker.Object{Name: "o5", Created: 400, Size: 1000}) // newer on b
	var sync int64
	for {
		rows, err := a.RowsSince(sync, 4)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 {
			break
		}
		if _, err := b.Merge(rows); err != nil {
			t.Fatal(err)
		}
		sync = rows[len(rows)-1].RowID
	}
	got, _ := b.List(broker.ListOptions{Limit: 100})
	if s := names(got, objectName); s != "o0 o1 o2 o4 o5 o6 o7 o8 o9" {
		t.Errorf("got %q, want all but the deleted o3", s)
	}
	info, _ := b.Info()
	if wantBytes := int64(0 + 1 + 2 + 4 + 1000 + 6 + 7 + 8 + 9); info.Objects != 9 || info.Bytes != wantBytes {
		t.Errorf("got %d objects, %d bytes; want 9, %d (b's newer o5 kept)", info.Objects, info.Bytes, wantBytes)
	}
	// A change moves the row to the end, so only it is sent next.
	a.PutObject(broker.Object{Name: "o0", Created: 500, Size: 1})
	if rows, _ := a.RowsSince(sync, 10); len(rows) != 1 || rows[0].Name != "o0" {
		t.Errorf("rows since the last sync: got %+v, want only o0", rows)
	}
}

func TestAccount(t *testing.T) {
	c := newCache(t, 0)
	path := filepath.Join(t.TempDir(), "a.db")
	d, created, err := c.CreateAccount(path, "AUTH_a", 100)
	if err != nil || !created {
		t.Fatalf("create account: created %v, %v", created, err)
	}
	defer d.Close()
	steps := []struct {
		name                      string
		r                         broker.ContainerRow
		wantCont, wantObj, wantBy int64
	}{
		{"c1 created", broker.ContainerRow{Name: "c1", Put: 10}, 1, 0, 0},
		{"c1 gets objects", broker.ContainerRow{Name: "c1", Put: 10, Objects: 3, Bytes: 30}, 1, 3, 30},
		{"c2 created with objects", broker.ContainerRow{Name: "c2", Put: 20, Objects: 1, Bytes: 5}, 2, 4, 35},
		{"stale report of c1 from before a newer PUT", broker.ContainerRow{Name: "c1", Put: 5, Objects: 99, Bytes: 99}, 2, 4, 35},
		{"c1 emptied", broker.ContainerRow{Name: "c1", Put: 10}, 2, 1, 5},
		{"c1 deleted", broker.ContainerRow{Name: "c1", Put: 10, Delete: 30}, 1, 1, 5},
		{"late report of c1 before its delete", broker.ContainerRow{Name: "c1", Put: 10, Objects: 2, Bytes: 2}, 1, 1, 5},
		{"c1 recreated", broker.ContainerRow{Name: "c1", Put: 40, Delete: 30}, 2, 1, 5},
	}
	for _, s := range steps {
		if err := d.PutContainer(s.r); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		info, _ := d.Info()
		if info.Containers != s.wantCont || info.Objects != s.wantObj || info.Bytes != s.wantBy {
			t.Errorf("%s: got %d containers, %d objects, %d bytes; want %d, %d, %d",
				s.name, info.Containers, info.Objects, info.Bytes, s.wantCont, s.wantObj, s.wantBy)
		}
	}
	d.PutContainer(broker.ContainerRow{Name: "d/1", Put: 50})
	d.PutContainer(broker.ContainerRow{Name: "d/2", Put: 50})
	got, err := d.List(broker.ListOptions{Delimiter: "/", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := []broker.ContainerRow{{Name: "c1", Put: 40, Delete: 30}, {Name: "c2", Put: 20, Objects: 1, Bytes: 5}, {Name: "d/", Subdir: true}}
	for i := range got {
		got[i].RowID = 0
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("listing: got %+v, want %+v", got, want)
	}
	if st, err := d.Delete(200); err != nil || !st.Deleted() {
		t.Errorf("delete account: got %+v, %v; want deleted", st, err)
	}
}

// BenchmarkPutObject records one object's PUT per operation, each its
// own transaction, as an object server's update is.
func BenchmarkPutObject(b *testing.B) {
	d := newContainer(b, newCache(b, 0), filepath.Join(b.TempDir(), "c.db"))
	for i := range b.N {
		if _, err := d.PutObject(broker.Object{Name: fmt.Sprintf("o%09d", i), Created: 200, Size: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMerge merges 1,000 rows per operation, as a replicator's
// batch is.
func BenchmarkMerge(b *testing.B) {
	d := newContainer(b, newCache(b, 0), filepath.Join(b.TempDir(), "c.db"))
	rows := make([]broker.Object, 1000)
	for i := range b.N {
		for j := range rows {
			rows[j] = broker.Object{Name: fmt.Sprintf("o%09d", i*1000+j), Created: 200, Size: 1}
		}
		if _, err := d.Merge(rows); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListPage lists a page of 10,000 from the middle of a
// container of a million objects, and one of its thousand subdirs.
func BenchmarkListPage(b *testing.B) {
	path := filepath.Join(b.TempDir(), "c.db")
	d := newContainer(b, newCache(b, 0), path)
	fill(b, path, 1_000_000)
	b.Run("objects", func(b *testing.B) {
		for range b.N {
			if page, err := d.List(broker.ListOptions{Marker: "d500/", Limit: 10_000}); err != nil || len(page) != 10_000 {
				b.Fatalf("got %d entries, %v", len(page), err)
			}
		}
	})
	b.Run("subdirs", func(b *testing.B) {
		for range b.N {
			if page, err := d.List(broker.ListOptions{Delimiter: "/", Limit: 10_000}); err != nil || len(page) != 1000 {
				b.Fatalf("got %d entries, %v", len(page), err)
			}
		}
	})
}
