package up

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/trustack/trustack/config"
	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/storage"
)

// objectStoreSecrets are the secrets of `trustack up`'s object store,
// made once and kept in its data directory.
type objectStoreSecrets struct {
	HashPathPrefix string `json:"hash_path_prefix"`
	HashPathSuffix string `json:"hash_path_suffix"`
	BackendKey     string `json:"backend_key"`
}

// startObjectStore runs [object_store] local_nodes storage nodes under
// DataDir/object-store, their rings in ring_dir (made on the first run),
// and sets cfg's secrets for the controller's proxy: those configured,
// else those made on the first run. Stop stops the nodes; nil when there
// are none.
func startObjectStore(cfg *config.Config, log *slog.Logger) (stop func(), err error) {
	oc := &cfg.ObjectStore
	if oc.LocalNodes == 0 || oc.Enabled == "no" {
		return func() {}, nil
	}
	dir := filepath.Join(cfg.DataDir, "object-store")
	secrets, err := loadSecrets(filepath.Join(dir, "secrets.json"))
	if err != nil {
		return nil, err
	}
	if oc.HashPathPrefix == "" && oc.HashPathSuffix == "" {
		oc.HashPathPrefix, oc.HashPathSuffix = secrets.HashPathPrefix, secrets.HashPathSuffix
	}
	if oc.BackendKey == "" {
		oc.BackendKey = secrets.BackendKey
	}
	oc.Enabled = "yes"
	nodes, err := storage.Local(dir, cfg.RingDir(), oc.LocalNodes, storage.Config{
		Hasher:             objectstore.Hasher{Prefix: oc.HashPathPrefix, Suffix: oc.HashPathSuffix},
		Key:                oc.BackendKey,
		UpdaterInterval:    oc.UpdaterInterval,
		ReplicatorInterval: oc.ReplicatorInterval,
		ExpirerInterval:    oc.ExpirerInterval,
		AuditRate:          oc.AuditorRate,
		Log:                log.With("component", "storage-node"),
	})
	if err != nil {
		return nil, err
	}
	var running []*storage.Node
	stop = func() {
		for _, n := range running {
			n.Close()
		}
	}
	for _, n := range nodes {
		node, err := storage.Start(n)
		if err != nil {
			stop()
			return nil, err
		}
		running = append(running, node)
	}
	log.Info("object store nodes running", "nodes", len(nodes), "ring_dir", cfg.RingDir())
	return stop, nil
}

// loadSecrets reads the object store's secrets from file, making them
// (random, 0600) if it does not exist.
func loadSecrets(file string) (objectStoreSecrets, error) {
	var s objectStoreSecrets
	data, err := os.ReadFile(file)
	if err == nil {
		return s, json.Unmarshal(data, &s)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	random := func() string {
		b := make([]byte, 24)
		rand.Read(b)
		return hex.EncodeToString(b)
	}
	s = objectStoreSecrets{HashPathPrefix: random(), HashPathSuffix: random(), BackendKey: random()}
	if err := os.MkdirAll(filepath.Dir(file), 0o750); err != nil {
		return s, err
	}
	data, _ = json.Marshal(s)
	return s, os.WriteFile(file, data, 0o600)
}
