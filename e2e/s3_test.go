package e2e

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// aws is Debian's awscli: a path, since another aws may come first on
// PATH.
const aws = "/usr/bin/aws"

// ec2Credentials makes EC2 credentials for env's user and project with
// the OpenStack CLI, and returns the environment that awscli takes them
// from, with a configuration file asking for path-style addressing.
func ec2Credentials(t testing.TB, env map[string]string) map[string]string {
	t.Helper()
	var cred struct{ Access, Secret string }
	if err := json.Unmarshal([]byte(must(t, env, "ec2", "credentials", "create", "-f", "json")), &cred); err != nil || cred.Access == "" || cred.Secret == "" {
		t.Fatalf("openstack ec2 credentials create: %+v (%v)", cred, err)
	}
	conf := filepath.Join(t.TempDir(), "aws-config")
	if err := os.WriteFile(conf, []byte("[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := maps.Clone(env)
	out["AWS_ACCESS_KEY_ID"], out["AWS_SECRET_ACCESS_KEY"] = cred.Access, cred.Secret
	out["AWS_CONFIG_FILE"], out["AWS_SHARED_CREDENTIALS_FILE"] = conf, conf
	return out
}

// writeTree writes files (by slash-separated name) under dir.
func writeTree(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// randomBytes returns n random bytes.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// testS3CLI drives the S3 API with awscli as its users do: a bucket made,
// a small file and one over 64 MiB (a multipart upload) copied in and
// out byte for byte, listed, seen through the Swift API too, shared by a
// presigned URL (refused once tampered with or expired), refused with a
// wrong secret, and everything removed.
func testS3CLI(t *testing.T, c *cloud, env map[string]string) {
	need(t, aws)
	awsEnv := ec2Credentials(t, env)
	dir := t.TempDir()
	small, big := []byte("hello, s3\n"), randomBytes(70<<20)
	writeTree(t, dir, map[string][]byte{"small.txt": small, "big.bin": big})
	endpoint := "http://" + c.s3addr
	s3 := func(args ...string) string {
		t.Helper()
		return runIn(t, awsEnv, dir, aws, append([]string{"--endpoint-url", endpoint}, args...)...)
	}

	s3("s3", "mb", "s3://reports")
	s3("s3", "cp", "small.txt", "s3://reports/small.txt")
	s3("s3", "cp", "big.bin", "s3://reports/archive/big.bin")
	out := s3("s3", "ls", "--recursive", "s3://reports")
	for _, want := range []string{fmt.Sprintf("%d archive/big.bin", len(big)), fmt.Sprintf("%d small.txt", len(small))} {
		if !strings.Contains(out, want) {
			t.Errorf("aws s3 ls --recursive: no %q in\n%s", want, out)
		}
	}
	for name, data := range map[string][]byte{"small.txt": small, "archive/big.bin": big} {
		got := filepath.Join(t.TempDir(), "got")
		s3("s3", "cp", "s3://reports/"+name, got)
		if b, err := os.ReadFile(got); err != nil || !bytes.Equal(b, data) {
			t.Errorf("aws s3 cp s3://reports/%s: %d bytes (%v), want the %d uploaded", name, len(b), err, len(data))
		}
	}
	// The multipart upload is one object, with S3's ETag of its parts.
	var head struct{ ETag string }
	if err := json.Unmarshal([]byte(s3("s3api", "head-object", "--bucket", "reports", "--key", "archive/big.bin")), &head); err != nil || !strings.HasSuffix(strings.Trim(head.ETag, `"`), "-9") {
		t.Errorf("aws s3api head-object of a 70 MiB upload in 8 MiB parts: ETag %q (%v), want one ending in -9", head.ETag, err)
	}
	// The same data through the Swift API.
	if got := lines(swift(t, env, dir, "list", "reports")); !slices.Equal(got, []string{"archive/big.bin", "small.txt"}) {
		t.Errorf("swift list reports: %q, want the objects put through S3", got)
	}

	url := s3("s3", "presign", "s3://reports/small.txt", "--expires-in", "60")
	if status, body := httpGet(t, url); status != http.StatusOK || !bytes.Equal(body, small) {
		t.Errorf("GET of a presigned URL: %d %q, want 200 and the object", status, body)
	}
	tampered := strings.Replace(url, "small.txt", "archive/big.bin", 1)
	if status, body := httpGet(t, tampered); status != http.StatusForbidden || !bytes.Contains(body, []byte("<Code>SignatureDoesNotMatch</Code>")) {
		t.Errorf("GET of a presigned URL for another object: %d %s, want 403 SignatureDoesNotMatch", status, body)
	}
	short := s3("s3", "presign", "s3://reports/small.txt", "--expires-in", "1")
	time.Sleep(2 * time.Second)
	if status, body := httpGet(t, short); status != http.StatusForbidden || !bytes.Contains(body, []byte("<Code>AccessDenied</Code>")) {
		t.Errorf("GET of an expired presigned URL: %d %s, want 403 AccessDenied", status, body)
	}

	wrong := maps.Clone(awsEnv)
	wrong["AWS_SECRET_ACCESS_KEY"] = strings.Repeat("0", len(awsEnv["AWS_SECRET_ACCESS_KEY"]))
	cmd := exec.Command(aws, "--endpoint-url", endpoint, "s3", "cp", "small.txt", "s3://reports/forged.txt")
	cmd.Env, cmd.Dir = environ(wrong), dir
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "SignatureDoesNotMatch") {
		t.Errorf("aws s3 cp with a wrong secret: %v\n%s\nwant SignatureDoesNotMatch", err, out)
	}
	if out := s3("s3", "ls", "--recursive", "s3://reports/"); strings.Contains(out, "forged.txt") {
		t.Errorf("aws s3 ls after a put with a wrong secret:\n%s\nwant no forged.txt", out)
	}

	s3("s3", "rm", "s3://reports/small.txt")
	s3("s3", "rb", "--force", "s3://reports")
	if out := s3("s3", "ls"); strings.Contains(out, "reports") {
		t.Errorf("aws s3 ls after removing the bucket:\n%s", out)
	}
}

// httpGet returns the status and body of a GET of url.
func httpGet(t testing.TB, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// testRclone syncs a tree of files both ways with rclone, through a
// Swift remote and an S3 remote on the same data, as its users do: each
// sync checked clean by `rclone check`, after changes on either side.
func testRclone(t *testing.T, c *cloud, env map[string]string) {
	need(t, "rclone")
	awsEnv := ec2Credentials(t, env)
	conf := filepath.Join(t.TempDir(), "rclone.conf")
	text := fmt.Sprintf(`[sw]
type = swift
env_auth = true

[s3]
type = s3
provider = Other
access_key_id = %s
secret_access_key = %s
endpoint = http://%s
region = us-east-1
force_path_style = true
`, awsEnv["AWS_ACCESS_KEY_ID"], awsEnv["AWS_SECRET_ACCESS_KEY"], c.s3addr)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	// rclone's S3 client cannot load a CA bundle into its own transport:
	// the machine's AWS_CA_BUNDLE, if any, must not reach it.
	rcloneEnv := maps.Clone(env)
	rcloneEnv["AWS_CA_BUNDLE"] = ""
	rclone := func(args ...string) string {
		t.Helper()
		return runIn(t, rcloneEnv, "", "rclone", append([]string{"--config", conf}, args...)...)
	}
	for _, remote := range []string{"sw:rclone-swift", "s3:rclone-s3"} {
		src := t.TempDir()
		writeTree(t, src, map[string][]byte{
			"a.txt": []byte("alpha\n"), "docs/b.txt": []byte("beta\n"), "docs/deep/c.bin": randomBytes(3 << 20), "empty": nil,
		})
		rclone("sync", src, remote)
		rclone("check", src, remote)
		// Changes on the local side: one file changed, one removed, one added.
		writeTree(t, src, map[string][]byte{"a.txt": []byte("alpha, changed\n"), "docs/new.txt": []byte("new\n")})
		if err := os.Remove(filepath.Join(src, "docs", "b.txt")); err != nil {
			t.Fatal(err)
		}
		rclone("sync", src, remote)
		rclone("check", src, remote)
		// And back: the remote synced to a new directory, then changed.
		back := t.TempDir()
		rclone("sync", remote, back)
		rclone("check", remote, back)
		rclone("deletefile", remote+"/docs/new.txt")
		rclone("sync", remote, back)
		rclone("check", remote, back)
		if _, err := os.Stat(filepath.Join(back, "docs", "new.txt")); err == nil {
			t.Errorf("rclone sync %s: a file deleted on the remote is still in the copy", remote)
		}
	}
	// One store under both APIs: each remote sees what the other wrote.
	rclone("check", "sw:rclone-s3", "s3:rclone-s3")
	rclone("check", "s3:rclone-swift", "sw:rclone-swift")
	sum := md5.Sum([]byte("alpha, changed\n"))
	if out := rclone("md5sum", "s3:rclone-swift/a.txt"); !strings.HasPrefix(out, hex.EncodeToString(sum[:])) {
		t.Errorf("rclone md5sum s3:rclone-swift/a.txt: %q, want %x", out, sum)
	}
}
