package e2e

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientObject is the object store session with trustack's own
// client against `trustack up`: a member of the demo project makes a
// container, uploads a small file and a 3 MiB one (in segments of 1 MiB,
// a static large object of three), lists, shows and downloads them byte
// for byte, deletes the large one with its segments and the container
// with what is left in it. A download of a missing object fails with a
// clear message and exit status 1.
func TestClientObject(t *testing.T) {
	c := startUp(t)
	demo := c.openrc("demo-openrc")
	dir := t.TempDir()
	files := map[string][]byte{"small.txt": []byte("hello, object store\n"), "big.bin": make([]byte, 3<<20)}
	rand.Read(files["big.bin"])
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	var box struct {
		Name        string            `json:"name"`
		ObjectCount int               `json:"object_count"`
		Properties  map[string]string `json:"properties"`
	}
	trustackJSON(t, demo, &box, "container", "create", "photos", "--property", "color=blue")
	if box.Name != "photos" || box.ObjectCount != 0 || box.Properties["Color"] != "blue" {
		t.Errorf("container create photos --property color=blue: got %+v, want photos, empty, Color=blue", box)
	}

	trustackOK(t, demo, "object", "upload", "photos", filepath.Join(dir, "small.txt"), "--name", "small.txt")
	out, errOut, code := trustackRun(t, demo, "object", "upload", "photos", filepath.Join(dir, "big.bin"), "--name", "big.bin", "--segment-size", "1048576", "-f", "json")
	if lines := strings.Split(strings.TrimSpace(errOut), "\n"); code != 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "uploaded 3.0 MiB in ") {
		t.Fatalf("object upload --segment-size 1048576 of 3 MiB: exit status %d, progress %q; want 0, one line \"uploaded 3.0 MiB in ...\"\n%s", code, errOut, out)
	}
	if !strings.Contains(out, `"Segments": 3`) {
		t.Errorf("object upload of 3 MiB in segments of 1 MiB: want 3 segments:\n%s", out)
	}

	var list []struct{ Name string }
	trustackJSON(t, demo, &list, "object", "list", "photos")
	if len(list) != 2 || list[0].Name != "big.bin" || list[1].Name != "small.txt" {
		t.Errorf("object list photos: got %+v, want big.bin and small.txt", list)
	}
	trustackJSON(t, demo, &list, "object", "list", "photos_segments", "--prefix", "big.bin/slo/")
	if len(list) != 3 || list[0].Name != "big.bin/slo/3145728/1048576/00000000" {
		t.Errorf("object list photos_segments: got %+v, want three segments, the first big.bin/slo/3145728/1048576/00000000", list)
	}
	// The account's counts of objects catch up with its containers' a
	// moment later, as Swift's do: only the containers are certain.
	var stats []struct{ Name string }
	trustackJSON(t, demo, &stats, "container", "list")
	if len(stats) != 2 || stats[0].Name != "photos" || stats[1].Name != "photos_segments" {
		t.Errorf("container list: got %+v, want photos and photos_segments", stats)
	}
	var shown struct {
		ObjectCount int `json:"object_count"`
		BytesUsed   int `json:"bytes_used"`
	}
	trustackJSON(t, demo, &shown, "container", "show", "photos_segments")
	if shown.ObjectCount != 3 || shown.BytesUsed != 3<<20 {
		t.Errorf("container show photos_segments: got %+v, want 3 objects, 3 MiB", shown)
	}

	type object struct {
		Bytes       int    `json:"bytes"`
		ETag        string `json:"etag"`
		LargeObject string `json:"large_object"`
		Segments    int    `json:"segments"`
	}
	var small, big object
	trustackJSON(t, demo, &small, "object", "show", "photos", "small.txt")
	if sum := md5.Sum(files["small.txt"]); small.Bytes != len(files["small.txt"]) || small.ETag != hex.EncodeToString(sum[:]) || small.LargeObject != "" {
		t.Errorf("object show photos small.txt: got %+v, want %d bytes, ETag %x, not a large object", small, len(files["small.txt"]), sum)
	}
	trustackJSON(t, demo, &big, "object", "show", "photos", "big.bin")
	if big.Bytes != 3<<20 || big.LargeObject != "static" || big.Segments != 3 {
		t.Errorf("object show photos big.bin: got %+v, want 3 MiB, a static large object of 3 segments", big)
	}
	if out := trustackOK(t, demo, "object", "show", "photos", "big.bin"); !strings.Contains(out, "large_object   static") {
		t.Errorf("object show photos big.bin says not that it is a static large object:\n%s", out)
	}

	for name, data := range files {
		path := filepath.Join(t.TempDir(), name)
		_, errOut, code := trustackRun(t, demo, "object", "download", "photos", name, "--file", path)
		if code != 0 || !strings.HasPrefix(errOut, "downloaded ") {
			t.Errorf("object download photos %s: exit status %d, %q; want 0 and a line \"downloaded ...\"", name, code, errOut)
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
			t.Errorf("object download photos %s: %d bytes (%v), want the %d uploaded", name, len(got), err, len(data))
		}
	}
	missing := filepath.Join(t.TempDir(), "missing")
	if _, errOut, code := trustackRun(t, demo, "object", "download", "photos", "missing", "--file", missing); code != 1 ||
		!strings.Contains(errOut, "container photos has no object missing (HTTP 404)") {
		t.Errorf("object download of a missing object: exit status %d, %q; want 1, \"container photos has no object missing (HTTP 404)\"", code, errOut)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("the file of the failed download: %v, want none", err)
	}

	if _, errOut, code := trustackRun(t, demo, "object", "upload", "nope", filepath.Join(dir, "small.txt")); code != 1 || !strings.Contains(errOut, "container nope does not exist (HTTP 404)") {
		t.Errorf("object upload to a missing container: exit status %d, %q; want 1, \"container nope does not exist (HTTP 404)\"", code, errOut)
	}

	trustackOK(t, demo, "object", "delete", "photos", "big.bin")
	trustackJSON(t, demo, &list, "object", "list", "photos_segments")
	if len(list) != 0 {
		t.Errorf("object list photos_segments after deleting big.bin: got %+v, want none", list)
	}
	if _, errOut, code := trustackRun(t, demo, "container", "delete", "photos"); code != 1 || !strings.Contains(errOut, "HTTP 409") {
		t.Errorf("container delete of a container with an object: exit status %d, %q; want 1, HTTP 409", code, errOut)
	}
	trustackOK(t, demo, "container", "delete", "photos", "--recursive")
	trustackJSON(t, demo, &stats, "container", "list")
	if len(stats) != 1 || stats[0].Name != "photos_segments" {
		t.Errorf("container list after deleting photos: got %+v, want photos_segments alone", stats)
	}
}
