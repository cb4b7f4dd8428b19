package identity

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fernet/fernet-go"

	"github.com/trustack/trustack"
)

// KeyRepository is a directory of Fernet keys laid out as Keystone lays
// them out: files named 0 to N, where 0 is the staged key (the next
// primary), N the primary that signs new tokens, and every key validates.
// Rotation promotes the staged key, so tokens signed before a rotation
// keep validating until their key is pruned MaxActive rotations later.
//
// A KeyRepository rereads the directory when it changes, at most once a
// second, so that a rotation by `trustack manage fernet rotate` reaches a
// running controller. It is safe for concurrent use.
type KeyRepository struct {
	dir string

	mu      sync.RWMutex
	keys    []*fernet.Key // primary first
	modTime time.Time
	checked time.Time
}

// DefaultMaxActiveKeys is how many keys a repository keeps, as Keystone's
// max_active_keys: the staged key, the primary, and one older key.
const DefaultMaxActiveKeys = 3

// OpenKeyRepository reads the keys in dir, creating the directory with a
// staged and a primary key if it holds none.
func OpenKeyRepository(dir string) (*KeyRepository, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create key repository: %w", err)
	}
	indexes, err := keyIndexes(dir)
	if err != nil {
		return nil, err
	}
	if len(indexes) == 0 {
		for _, i := range []int{1, 0} {
			if err := writeNewKey(dir, i); err != nil {
				return nil, err
			}
		}
	}
	r := &KeyRepository{dir: dir}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

// Primary returns the key that signs new tokens.
func (r *KeyRepository) Primary() *fernet.Key {
	r.refresh()
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.keys[0]
}

// All returns every key that validates tokens, the primary first.
func (r *KeyRepository) All() []*fernet.Key {
	r.refresh()
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.keys
}

// refresh rereads the keys if the directory changed, checking at most once
// a second. A failed reread keeps the keys already loaded.
func (r *KeyRepository) refresh() {
	now := time.Now()
	r.mu.RLock()
	due := now.Sub(r.checked) >= time.Second
	r.mu.RUnlock()
	if !due {
		return
	}
	r.mu.Lock()
	r.checked = now
	r.mu.Unlock()
	if fi, err := os.Stat(r.dir); err == nil && !fi.ModTime().Equal(r.modTimeSnapshot()) {
		r.load()
	}
}

func (r *KeyRepository) modTimeSnapshot() time.Time {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.modTime
}

func (r *KeyRepository) load() error {
	fi, err := os.Stat(r.dir)
	if err != nil {
		return fmt.Errorf("read key repository: %w", err)
	}
	indexes, err := keyIndexes(r.dir)
	if err != nil {
		return err
	}
	if len(indexes) < 2 {
		return trustack.Errorf(trustack.EINVALID, "key repository %s holds %d keys; it needs a staged and a primary key", r.dir, len(indexes))
	}
	// Descending: the primary, then older keys, the staged key 0 last.
	keys := make([]*fernet.Key, 0, len(indexes))
	for i := len(indexes) - 1; i >= 0; i-- {
		b, err := os.ReadFile(filepath.Join(r.dir, strconv.Itoa(indexes[i])))
		if err != nil {
			return fmt.Errorf("read key %d: %w", indexes[i], err)
		}
		k, err := fernet.DecodeKey(strings.TrimSpace(string(b)))
		if err != nil {
			return trustack.Errorf(trustack.EINVALID, "key %s/%d is not a Fernet key", r.dir, indexes[i])
		}
		keys = append(keys, k)
	}
	r.mu.Lock()
	r.keys, r.modTime = keys, fi.ModTime()
	r.mu.Unlock()
	return nil
}

// RotateKeys rotates the repository in dir: the staged key becomes the
// primary, a new staged key is made, and the oldest keys are removed so
// that at most maxActive remain. It returns the new primary's index.
func RotateKeys(dir string, maxActive int) (int, error) {
	if maxActive < 2 {
		return 0, trustack.Errorf(trustack.EINVALID, "max_active_keys must be at least 2, got %d", maxActive)
	}
	indexes, err := keyIndexes(dir)
	if err != nil {
		return 0, err
	}
	if len(indexes) == 0 || indexes[0] != 0 {
		return 0, trustack.Errorf(trustack.EINVALID, "key repository %s has no staged key 0: is it a key repository?", dir)
	}
	next := indexes[len(indexes)-1] + 1
	staged, err := os.ReadFile(filepath.Join(dir, "0"))
	if err != nil {
		return 0, fmt.Errorf("read staged key: %w", err)
	}
	// Publish the new primary before replacing the staged key, so that a
	// reader never sees a repository without the key it was staged as.
	if err := writeKeyFile(dir, next, staged); err != nil {
		return 0, err
	}
	if err := writeNewKey(dir, 0); err != nil {
		return 0, err
	}
	indexes = append(indexes, next)
	for len(indexes) > maxActive {
		// Remove the oldest key that is not the staged one.
		if err := os.Remove(filepath.Join(dir, strconv.Itoa(indexes[1]))); err != nil {
			return 0, fmt.Errorf("prune key: %w", err)
		}
		indexes = append(indexes[:1], indexes[2:]...)
	}
	return next, nil
}

// keyIndexes returns the indexes of the key files in dir, ascending.
func keyIndexes(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read key repository: %w", err)
	}
	var indexes []int
	for _, e := range entries {
		if i, err := strconv.Atoi(e.Name()); err == nil && i >= 0 && e.Type().IsRegular() {
			indexes = append(indexes, i)
		}
	}
	sort.Ints(indexes)
	return indexes, nil
}

func writeNewKey(dir string, index int) error {
	var k fernet.Key
	if err := k.Generate(); err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	return writeKeyFile(dir, index, []byte(k.Encode()))
}

// writeKeyFile writes a key file whole or not at all.
func writeKeyFile(dir string, index int, key []byte) error {
	tmp, err := os.CreateTemp(dir, ".key-*")
	if err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return fmt.Errorf("write key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, strconv.Itoa(index))); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	return nil
}
