package compute_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"
)

// publicKey is an SSH public key as a user imports it: with a comment
// and the newline of the file it was read from.
const publicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGMFGU7FcCmLcYjBBd5/dWXogfTRbmF4wfSTran7XvLg alice@laptop\n"

// TestImportedKeyKeptExactly: a public key comes back exactly as it was
// imported, newline and comment included, as Nova keeps it.
func TestImportedKeyKeptExactly(t *testing.T) {
	c := newCloud(t)
	created := c.must(t, http.StatusOK, "alice", "POST", "/os-keypairs", obj{"keypair": obj{"name": "k", "public_key": publicKey}})["keypair"].(obj)
	shown := c.must(t, http.StatusOK, "alice", "GET", "/os-keypairs/k", nil)["keypair"].(obj)
	listed := item(c.must(t, http.StatusOK, "alice", "GET", "/os-keypairs", nil)["keypairs"], 0)["keypair"].(obj)
	for what, k := range map[string]obj{"create": created, "show": shown, "list": listed} {
		if k["public_key"] != publicKey {
			t.Errorf("%s: public_key %q, want %q", what, k["public_key"], publicKey)
		}
	}
}

// TestKeypairVersions: from 2.2 keypairs have a type, creation answers
// 201 and deletion 204; below, a type is refused and neither shown.
func TestKeypairVersions(t *testing.T) {
	c := newCloud(t)
	for _, tt := range []struct {
		version                string
		create, delete         int
		typed, takesType       bool
		createdType, shownType any
	}{
		{version: "2.1", create: http.StatusOK, delete: http.StatusAccepted},
		{version: "2.2", create: http.StatusCreated, delete: http.StatusNoContent, typed: true, takesType: true},
		{version: "2.5", create: http.StatusCreated, delete: http.StatusNoContent, typed: true, takesType: true},
	} {
		t.Run(tt.version, func(t *testing.T) {
			v := c.at(tt.version)
			k := v.must(t, tt.create, "alice", "POST", "/os-keypairs", obj{"keypair": obj{"name": "k" + tt.version, "public_key": publicKey}})["keypair"].(obj)
			shown := v.must(t, http.StatusOK, "alice", "GET", "/os-keypairs/k"+tt.version, nil)["keypair"].(obj)
			listed := item(v.must(t, http.StatusOK, "alice", "GET", "/os-keypairs", nil)["keypairs"], 0)["keypair"].(obj)
			for what, o := range map[string]obj{"create": k, "show": shown, "list": listed} {
				typ, has := o["type"]
				if has != tt.typed || has && typ != "ssh" {
					t.Errorf("%s: type %v (present %v), want present %v, ssh", what, typ, has, tt.typed)
				}
			}
			status, body := v.do(t, "alice", "POST", "/os-keypairs", obj{"keypair": obj{"name": "t" + tt.version, "type": "ssh", "public_key": publicKey}})
			if want := map[bool]int{true: tt.create, false: http.StatusBadRequest}[tt.takesType]; status != want {
				t.Errorf("create with a type: status %d, want %d: %v", status, want, body)
			}
			v.must(t, tt.delete, "alice", "DELETE", "/os-keypairs/k"+tt.version, nil)
		})
	}
}

// TestX509Keypairs: from 2.2 a keypair may be an X.509 certificate,
// imported (its fingerprint the certificate's SHA-1) or made by the cloud
// (with its private key); a certificate is not an SSH key nor the
// reverse.
func TestX509Keypairs(t *testing.T) {
	c := newCloud(t)
	v := c.at("2.2")
	cert, sum := certificate(t)
	k := v.must(t, http.StatusCreated, "alice", "POST", "/os-keypairs", obj{"keypair": obj{"name": "cert", "type": "x509", "public_key": cert}})["keypair"].(obj)
	if k["type"] != "x509" || k["public_key"] != cert || k["fingerprint"] != sum {
		t.Errorf("imported certificate: type %v, fingerprint %v, public_key kept %v; want x509, %s, true", k["type"], k["fingerprint"], k["public_key"] == cert, sum)
	}
	made := v.must(t, http.StatusCreated, "alice", "POST", "/os-keypairs", obj{"keypair": obj{"name": "made", "type": "x509"}})["keypair"].(obj)
	block, _ := pem.Decode([]byte(made["public_key"].(string)))
	if block == nil || block.Type != "CERTIFICATE" || !strings.Contains(made["private_key"].(string), "PRIVATE KEY") {
		t.Errorf("made x509 keypair: public_key %.40q, private_key %.40q; want a certificate and a private key", made["public_key"], made["private_key"])
	}
	for _, tt := range []struct{ typ, key string }{{"ssh", cert}, {"x509", publicKey}, {"rsa", publicKey}} {
		if status, body := v.do(t, "alice", "POST", "/os-keypairs", obj{"keypair": obj{"name": "bad", "type": tt.typ, "public_key": tt.key}}); status != http.StatusBadRequest {
			t.Errorf("type %s with the wrong key: status %d, want 400: %v", tt.typ, status, body)
		}
	}
}

// certificate returns a self-signed certificate in PEM and its SHA-1
// fingerprint as Nova shows it.
func certificate(t *testing.T) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "alice"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(der)
	hexes := make([]string, len(sum))
	for i, b := range sum {
		hexes[i] = fmt.Sprintf("%02x", b)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), strings.Join(hexes, ":")
}

// TestKeypairsOfOtherUsers: from 2.10 an administrator manages another
// user's keypairs with user_id; a member may not, and below 2.10 user_id
// is not a field of creation.
func TestKeypairsOfOtherUsers(t *testing.T) {
	c := newCloud(t)
	v := c.at("2.10")
	k := v.must(t, http.StatusCreated, "admin", "POST", "/os-keypairs", obj{"keypair": obj{"name": "given", "user_id": "u-alice", "public_key": publicKey}})["keypair"].(obj)
	if k["user_id"] != "u-alice" {
		t.Errorf("created for alice: user_id %v, want u-alice", k["user_id"])
	}
	if got := v.must(t, http.StatusOK, "alice", "GET", "/os-keypairs/given", nil)["keypair"].(obj)["user_id"]; got != "u-alice" {
		t.Errorf("alice's view: user_id %v, want u-alice", got)
	}
	if list := v.must(t, http.StatusOK, "admin", "GET", "/os-keypairs?user_id=u-alice", nil)["keypairs"].([]any); len(list) != 1 {
		t.Errorf("admin lists alice's keypairs: %d, want 1", len(list))
	}
	if list := v.must(t, http.StatusOK, "admin", "GET", "/os-keypairs", nil)["keypairs"].([]any); len(list) != 0 {
		t.Errorf("admin lists its own keypairs: %d, want 0", len(list))
	}
	v.must(t, http.StatusOK, "admin", "GET", "/os-keypairs/given?user_id=u-alice", nil)
	v.must(t, http.StatusForbidden, "bob", "GET", "/os-keypairs/given?user_id=u-alice", nil)
	v.must(t, http.StatusForbidden, "bob", "POST", "/os-keypairs", obj{"keypair": obj{"name": "planted", "user_id": "u-alice", "public_key": publicKey}})
	c.at("2.9").must(t, http.StatusBadRequest, "admin", "POST", "/os-keypairs", obj{"keypair": obj{"name": "early", "user_id": "u-alice", "public_key": publicKey}})
	c.at("2.9").must(t, http.StatusNotFound, "admin", "GET", "/os-keypairs/given?user_id=u-alice", nil)
	v.must(t, http.StatusNoContent, "admin", "DELETE", "/os-keypairs/given?user_id=u-alice", nil)
	c.must(t, http.StatusNotFound, "alice", "GET", "/os-keypairs/given", nil)
}
