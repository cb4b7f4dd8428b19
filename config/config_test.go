package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "trustack.conf")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	c, err := Load(write(t, `
# a comment
[DEFAULT]
data_dir = /srv/trustack
[database]
connection = postgres://u:p@db/trustack
[auth]
token_expiration = 7200
cache_time = 0.5
; another comment
[log]
format = JSON
[object_store]
expirer_interval = 0
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ got, want any }{
		{c.DataDir, "/srv/trustack"},
		{c.DatabaseDSN(), "postgres://u:p@db/trustack"},
		{c.Auth.TokenExpiration, 2 * time.Hour},
		{c.Auth.CacheTime, 500 * time.Millisecond},
		{c.Log.Format, "json"},
		{c.KeyRepositoryDir(), "/srv/trustack/fernet-keys"},
		{c.CredentialKeyRepositoryDir(), "/srv/trustack/credential-keys"},
		{c.Auth.MaxActiveKeys, 3}, // untouched default
		{c.ObjectStore.ExpirerInterval, time.Duration(0)},
	} {
		if tc.got != tc.want {
			t.Errorf("got %v, want %v", tc.got, tc.want)
		}
	}
}

func TestLoadBusCluster(t *testing.T) {
	c, err := Load(write(t, `
[bus]
listen = 0.0.0.0:4222
cluster_listen = 10.0.0.1:6222
routes = 10.0.0.1:6222, 10.0.0.2:6222,10.0.0.3:6222
cluster_secret = sixteen chars!!!
`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Bus.Routes, []string{"10.0.0.1:6222", "10.0.0.2:6222", "10.0.0.3:6222"}; !reflect.DeepEqual(got, want) {
		t.Errorf("routes: got %q, want %q", got, want)
	}
	if c.Bus.ClusterListen != "10.0.0.1:6222" || c.Bus.ClusterSecret != "sixteen chars!!!" {
		t.Errorf("cluster_listen %q, cluster_secret %q: want the file's", c.Bus.ClusterListen, c.Bus.ClusterSecret)
	}
}

func TestLoadOverKeepsWhatTheFileDoesNotSet(t *testing.T) {
	base := Default()
	base.Bus.Listen = "127.0.0.1:0"
	c, err := LoadOver(base, write(t, "[api]\nlisten = 127.0.0.1:5001\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Bus.Listen != "127.0.0.1:0" || c.API.Listen != "127.0.0.1:5001" {
		t.Errorf("bus on %q and API on %q, want the base's bus and the file's API", c.Bus.Listen, c.API.Listen)
	}
}

func TestLoadErrorsNameTheLine(t *testing.T) {
	for text, want := range map[string]string{
		"[auth]\ntoken_expiraton = 5\n": ":2: unknown option \"token_expiraton\"",
		"[nope]\n":                      ":1: unknown section [nope]",
		"[auth]\nmax_active_keys = x\n": ":2: [auth] max_active_keys: want an integer",
		"data_dir = /x\n":               ":1: option before any [section]",
		"[log]\nformat = xml\n":         "[log] format must be text or json",
		"[auth]\nmax_active_keys = 1\n": "max_active_keys must be at least 2",
		"[api\n":                        ":1: malformed section header",
		"[image]\nstore = swift\n":      "[image] store must be file or object",
		"[image]\nstore = object\n[object_store]\nenabled = no\n":               "[image] store = object needs the object store",
		"[image]\nobject_store_chunk_size = 0\n":                                "object_store_chunk_size must be positive",
		"[attestation]\ngrace_period = 30\n[compute]\nservice_down_time = 60\n": "grace_period (30s) must be at least [compute] service_down_time (1m0s)",
		// A cluster of embedded buses needs all of its options, and no
		// external bus.
		"[bus]\nroutes = ctl2:6222\ncluster_secret = a secret of the controllers\n":                                     "[bus] routes needs [bus] cluster_listen",
		"[bus]\ncluster_listen = 0.0.0.0:6222\n":                                                                        "[bus] cluster_listen needs a [bus] cluster_secret of at least 16 characters, got 0",
		"[bus]\ncluster_listen = 0.0.0.0:6222\ncluster_secret = fifteen chars..\n":                                      "[bus] cluster_listen needs a [bus] cluster_secret of at least 16 characters, got 15",
		"[bus]\nurl = nats://nats1:4222\ncluster_listen = 0.0.0.0:6222\ncluster_secret = a secret of the controllers\n": "[bus] cluster_listen and url are exclusive",
		"[object_store]\nexpirer_interval = 0.5\n":                                                                      "expirer_interval must be 0 (no expirer) or at least 1 second",
	} {
		_, err := Load(write(t, text))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(%q): got %v, want an error containing %q", text, err, want)
		}
	}
}

func TestDefaultsDocumentEveryOptionAndParse(t *testing.T) {
	text := Defaults()
	for _, o := range Default().options() {
		if !strings.Contains(text, "#"+o.name+" = ") {
			t.Errorf("defaults lack option %s", o.name)
		}
		if o.help == "" {
			t.Errorf("option [%s] %s has no help", o.section, o.name)
		}
	}
	// Uncommenting every option gives the defaults back.
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "#") && strings.Contains(line, " = ") && !strings.HasPrefix(line, "# ") {
			line = line[1:]
		}
		b.WriteString(line + "\n")
	}
	c, err := Load(write(t, b.String()))
	if err != nil {
		t.Fatalf("the uncommented defaults do not load: %v", err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("uncommented defaults give %+v, want %+v", c, Default())
	}
}
