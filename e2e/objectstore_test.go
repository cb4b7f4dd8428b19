package e2e

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// swift runs python-swiftclient's swift command with env in dir and
// fails the test if it fails.
func swift(t testing.TB, env map[string]string, dir string, args ...string) string {
	t.Helper()
	return runIn(t, env, dir, "swift", args...)
}

// runIn runs a command with env in dir and fails the test if it fails.
func runIn(t testing.TB, env map[string]string, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = environ(env)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return strings.TrimSpace(out.String())
}

// lines splits a command's output into its lines, none if empty.
func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// TestObjectStoreClients drives the object store of `trustack up` (four
// storage nodes, three replicas) with python-swiftclient and the
// OpenStack CLI as a user does: containers made, files uploaded, listed,
// downloaded byte for byte, their ETags the MD5 of their content, and
// everything deleted. Then, on the same cloud, awscli on the S3 API and
// rclone on both APIs.
func TestObjectStoreClients(t *testing.T) {
	need(t, "swift", "openstack")
	c := startUp(t)
	env := c.openrc("demo-openrc")
	dir := t.TempDir()
	files := map[string][]byte{"small.txt": []byte("hello, object store\n"), "docs/big.bin": make([]byte, 3<<20)}
	rand.Read(files["docs/big.bin"])
	for name, data := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o750)
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	if out := swift(t, env, dir, "stat"); !strings.Contains(out, "Account: AUTH_") || !strings.Contains(out, "Containers: 0") {
		t.Errorf("swift stat of a new account:\n%s", out)
	}
	swift(t, env, dir, "post", "photos", "--meta", "color:blue")
	swift(t, env, dir, "upload", "photos", "small.txt", "docs/big.bin")
	if got := lines(swift(t, env, dir, "list")); !slices.Equal(got, []string{"photos"}) {
		t.Errorf("swift list: %q, want photos", got)
	}
	if got := lines(swift(t, env, dir, "list", "photos")); !slices.Equal(got, []string{"docs/big.bin", "small.txt"}) {
		t.Errorf("swift list photos: %q, want docs/big.bin and small.txt", got)
	}
	if out := swift(t, env, dir, "stat", "photos"); !strings.Contains(out, "Meta Color: blue") {
		t.Errorf("swift stat photos: no metadata color:\n%s", out)
	}
	for name, data := range files {
		sum := md5.Sum(data)
		if out := swift(t, env, dir, "stat", "photos", name); !strings.Contains(out, "ETag: "+hex.EncodeToString(sum[:])) {
			t.Errorf("swift stat photos %s: want the ETag %x:\n%s", name, sum, out)
		}
		out := filepath.Join(t.TempDir(), "download")
		swift(t, env, dir, "download", "photos", name, "-o", out)
		got, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("swift download photos %s: %d bytes (%v), want the %d uploaded", name, len(got), err, len(data))
		}
	}
	// Large files in segments, as dynamic and as static large objects.
	swift(t, env, dir, "upload", "--segment-size", "1048576", "--object-name", "dlo.bin", "photos", "docs/big.bin")
	swift(t, env, dir, "upload", "--segment-size", "1048576", "--use-slo", "--object-name", "slo.bin", "photos", "docs/big.bin")
	if got := lines(swift(t, env, dir, "list", "photos_segments")); len(got) != 6 {
		t.Errorf("swift list photos_segments: %q, want three segments of each upload", got)
	}
	for _, name := range []string{"dlo.bin", "slo.bin"} {
		out := filepath.Join(t.TempDir(), name)
		swift(t, env, dir, "download", "photos", name, "-o", out)
		if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, files["docs/big.bin"]) {
			t.Errorf("swift download photos %s: %d bytes (%v), want the %d uploaded", name, len(got), err, len(files["docs/big.bin"]))
		}
	}
	swift(t, env, dir, "delete", "photos")
	swift(t, env, dir, "delete", "photos_segments")
	if got := lines(swift(t, env, dir, "list")); len(got) != 0 {
		t.Errorf("swift list after deleting photos: %q", got)
	}

	must(t, env, "container", "create", "reports")
	if out := must(t, env, "container", "list", "-f", "value"); !strings.Contains(out, "reports") {
		t.Errorf("openstack container list: %q, want reports", out)
	}
	runIn(t, env, dir, "openstack", "object", "create", "reports", "small.txt")
	if out := must(t, env, "object", "list", "reports", "-f", "value"); out != "small.txt" {
		t.Errorf("openstack object list reports: %q, want small.txt", out)
	}
	saved := filepath.Join(t.TempDir(), "saved")
	must(t, env, "object", "save", "reports", "small.txt", "--file", saved)
	if got, err := os.ReadFile(saved); err != nil || !bytes.Equal(got, files["small.txt"]) {
		t.Errorf("openstack object save: %q (%v), want %q", got, err, files["small.txt"])
	}
	must(t, env, "object", "delete", "reports", "small.txt")
	must(t, env, "container", "delete", "reports")
	if out := must(t, env, "container", "list", "-f", "value"); out != "" {
		t.Errorf("openstack container list after the delete: %q", out)
	}
	t.Run("awscli", func(t *testing.T) { testS3CLI(t, c, env) })
	t.Run("rclone", func(t *testing.T) { testRclone(t, c, env) })
}

// objectStore returns the demo project's object store URL (its account)
// and a token for it.
func objectStore(t testing.TB, env map[string]string) (string, string) {
	t.Helper()
	tok := token(t, env)
	var v struct {
		Token struct{ Project struct{ ID string } }
	}
	api(t, "GET", env["OS_AUTH_URL"]+"/auth/tokens", tok, nil, &v, "X-Subject-Token", tok)
	if v.Token.Project.ID == "" {
		t.Fatal("the token names no project")
	}
	return strings.TrimSuffix(env["OS_AUTH_URL"], "/identity/v3") + "/object-store/v1/AUTH_" + v.Token.Project.ID, tok
}

// TestObjectStoreSurvivesKill kills `trustack up` (its proxy and its four
// storage nodes in one process) with SIGKILL during 1,000 concurrent
// uploads, then starts it again: every upload acknowledged with 201 reads
// back whole, with its ETag, and the container's listing converges to
// the acknowledged objects, and of the others only some whose outcome
// the clients never learnt.
func TestObjectStoreSurvivesKill(t *testing.T) {
	c := startUp(t)
	url, tok := objectStore(t, c.openrc("demo-openrc"))
	do := func(method, path string, body []byte) (*http.Response, error) {
		req, err := http.NewRequest(method, url+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Auth-Token", tok)
		return http.DefaultClient.Do(req)
	}
	if resp, err := do("PUT", "/crash", nil); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT /crash: %v %v", resp, err)
	}
	const uploads, clients = 1000, 32
	var (
		mu       sync.Mutex
		acked    = map[string]string{} // name: MD5
		unknown  = map[string]bool{}
		killOnce sync.Once
		next     = make(chan int)
		wg       sync.WaitGroup
	)
	for range clients {
		wg.Go(func() {
			for i := range next {
				name := fmt.Sprintf("obj-%04d", i)
				data := make([]byte, 1+i*37%65536)
				rand.Read(data)
				sum := md5.Sum(data)
				resp, err := do("PUT", "/crash/"+name, data)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				switch {
				case err == nil && resp.StatusCode == http.StatusCreated:
					acked[name] = hex.EncodeToString(sum[:])
					if len(acked) == 300 {
						go killOnce.Do(func() { c.signal(syscall.SIGKILL) })
					}
				case err == nil && resp.StatusCode >= 500, err != nil:
					unknown[name] = true
				default:
					t.Errorf("PUT %s: status %d", name, resp.StatusCode)
				}
				mu.Unlock()
			}
		})
	}
	for i := range uploads {
		next <- i
	}
	close(next)
	wg.Wait()
	killOnce.Do(func() { t.Fatal("trustack was never killed: fewer than 300 uploads succeeded") })
	t.Logf("%d uploads acknowledged, %d cut off by the kill", len(acked), len(unknown))

	c.start("trustack ready")
	for name, sum := range acked {
		resp, err := do("GET", "/crash/"+name, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := md5.Sum(body)
		if err != nil || resp.StatusCode != http.StatusOK || hex.EncodeToString(got[:]) != sum || resp.Header.Get("Etag") != sum {
			t.Errorf("%s, acknowledged before the kill: status %d, %d bytes of MD5 %x, ETag %s (%v); want %s", name, resp.StatusCode, len(body), got, resp.Header.Get("Etag"), err, sum)
		}
	}
	var listed []string
	deadline := time.Now().Add(2 * time.Minute)
	for {
		listed = listed[:0]
		for marker := ""; ; {
			resp, err := do("GET", "/crash?format=json&marker="+marker, nil)
			if err != nil {
				t.Fatal(err)
			}
			var page []struct{ Name string }
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			if err != nil || len(page) == 0 {
				break
			}
			for _, o := range page {
				listed = append(listed, o.Name)
			}
			marker = page[len(page)-1].Name
		}
		missing, extra := 0, 0
		for name := range acked {
			if !slices.Contains(listed, name) {
				missing++
			}
		}
		for _, name := range listed {
			if acked[name] == "" && !unknown[name] {
				extra++
			}
		}
		if missing == 0 && extra == 0 {
			t.Logf("the listing holds the %d acknowledged objects and %d of the %d cut off", len(acked), len(listed)-len(acked), len(unknown))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the listing, 2 minutes after the restart, lacks %d acknowledged objects and lists %d never uploaded", missing, extra)
		}
		time.Sleep(time.Second)
	}
}
