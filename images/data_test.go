package images_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/images"
	"github.com/trustack/trustack/images/imagestest"
	"github.com/trustack/trustack/sqlstore"
)

// dataCap is the size cap of the data store tests: eight segments.
const dataCap = 8 * imagestest.ChunkSize

// randomData returns n bytes of seeded randomness.
func randomData(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// onlyReader hides a reader's other methods, so that nothing knows its
// size: as a chunked upload.
type onlyReader struct{ io.Reader }

// failingReader gives n bytes of data, then fails, as a client gone.
func failingReader(data []byte) io.Reader {
	return io.MultiReader(bytes.NewReader(data), errorReader{errors.New("client gone")})
}

type errorReader struct{ err error }

func (e errorReader) Read([]byte) (int, error) { return 0, e.err }

// TestDataStores runs every data store through what image data goes
// through: uploads of known and unknown size, of one chunk and of
// several, downloads whole and from an offset, uploads that fail (over
// the cap, a checksum mismatch, a size mismatch, a client gone) leaving
// nothing behind, deletes leaving nothing behind, and a second service
// over the same database and storage (another controller) seeing the
// same data.
func TestDataStores(t *testing.T) {
	for _, b := range imagestest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			st := b.New(t)
			db, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "db"))
			must(t, err)
			t.Cleanup(func() { db.Close() })
			one := images.New(db, st.Open(t), images.Options{SizeCap: dataCap})
			other := images.New(db, st.Open(t), images.Options{SizeCap: dataCap})
			create := func() string {
				img := &trustack.Image{DiskFormat: "raw", ContainerFormat: "bare"}
				must(t, one.Create(ctx, alice, img))
				return img.ID
			}
			status := func(id string) string {
				img, err := one.Image(ctx, alice, id)
				must(t, err)
				return img.Status
			}
			read := func(svc *images.Service, id string, offset int64) []byte {
				t.Helper()
				_, r, err := svc.Download(ctx, alice, id)
				must(t, err)
				defer r.Close()
				_, err = r.Seek(offset, io.SeekStart)
				must(t, err)
				b, err := io.ReadAll(r)
				must(t, err)
				return b
			}

			for _, tc := range []struct {
				name    string
				size    int
				known   bool
				objects int
			}{
				{"empty", 0, false, 1},
				{"one chunk, size known", imagestest.ChunkSize, true, 1},
				{"one chunk, size unknown", 100, false, 2},
				{"three and a half chunks, size unknown", 7 * imagestest.ChunkSize / 2, false, 5},
				{"three chunks, size known", 3 * imagestest.ChunkSize, true, 4},
				{"at the cap", dataCap, false, 9},
			} {
				data := randomData(tc.size)
				id := create()
				var want images.Expect
				if tc.known {
					want.Size = int64(len(data))
				}
				img, err := one.Upload(ctx, alice, id, onlyReader{bytes.NewReader(data)}, want)
				must(t, err)
				sum := md5.Sum(data)
				if img.Size != int64(len(data)) || img.Checksum != hex.EncodeToString(sum[:]) {
					t.Errorf("%s: uploaded image of size %d, checksum %s; want %d, %x", tc.name, img.Size, img.Checksum, len(data), sum)
				}
				for _, svc := range []*images.Service{one, other} {
					if got := read(svc, id, 0); !bytes.Equal(got, data) {
						t.Errorf("%s: downloaded %d bytes that differ from the %d uploaded", tc.name, len(got), len(data))
					}
				}
				if len(data) > 10 {
					off := int64(len(data)/2 + 3)
					if got := read(other, id, off); !bytes.Equal(got, data[off:]) {
						t.Errorf("%s: from byte %d, downloaded %d bytes that differ from the %d uploaded", tc.name, off, len(got), len(data[off:]))
					}
				}
				// The object store keeps an image of unknown size, or
				// larger than a chunk, as a manifest and its segments.
				stored := st.Stored(t)
				if len(stored) == 0 || b.Name == "objects" && len(stored) != tc.objects {
					t.Errorf("%s: stored %v, want %d objects in the object store", tc.name, stored, tc.objects)
				}
				// Another controller deletes it, with all its pieces.
				must(t, other.Delete(ctx, alice, id))
				if left := st.Stored(t); len(left) != 0 {
					t.Errorf("%s: after the delete, left %v", tc.name, left)
				}
			}

			data := randomData(5 * imagestest.ChunkSize / 2)
			sum := md5.Sum(data)
			for _, tc := range []struct {
				name   string
				r      io.Reader
				want   images.Expect
				code   string
				status string
			}{
				{"over the cap", onlyReader{bytes.NewReader(randomData(dataCap + 1))}, images.Expect{}, trustack.EOVERQUOTA, trustack.ImageQueued},
				{"over the cap, size announced", bytes.NewReader(randomData(dataCap + 1)), images.Expect{Size: dataCap + 1}, trustack.EOVERQUOTA, trustack.ImageQueued},
				{"client gone", failingReader(data), images.Expect{}, trustack.EINVALID, trustack.ImageQueued},
				{"shorter than announced", bytes.NewReader(data), images.Expect{Size: int64(len(data)) + 1}, trustack.EINVALID, trustack.ImageQueued},
				{"longer than announced", bytes.NewReader(data), images.Expect{Size: imagestest.ChunkSize}, trustack.EINVALID, trustack.ImageQueued},
				{"MD5 mismatch", bytes.NewReader(data), images.Expect{MD5: hex.EncodeToString(sum[:1]) + fmt.Sprintf("%030x", 0)}, trustack.EINVALID, trustack.ImageKilled},
			} {
				id := create()
				_, err := one.Upload(ctx, alice, id, tc.r, tc.want)
				code(t, err, tc.code)
				if got := status(id); got != tc.status {
					t.Errorf("%s: the image is %s, want %s", tc.name, got, tc.status)
				}
				if left := st.Stored(t); len(left) != 0 {
					t.Errorf("%s: the failed upload left %v", tc.name, left)
				}
			}
		})
	}
}

// TestObjectStoreFailureIsAnError reads an image one of whose segments
// is gone: the download fails rather than ends early or with other
// bytes, whole or from an offset.
func TestObjectStoreFailureIsAnError(t *testing.T) {
	h := imagestest.StartObjectStore(t)
	db, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "db"))
	must(t, err)
	t.Cleanup(func() { db.Close() })
	st := imagestest.ObjectStorage(h)
	svc := images.New(db, st.Open(t), images.Options{})
	img := &trustack.Image{DiskFormat: "raw", ContainerFormat: "bare"}
	must(t, svc.Create(ctx, alice, img))
	data := randomData(3 * imagestest.ChunkSize)
	_, err = svc.Upload(ctx, alice, img.ID, bytes.NewReader(data), images.Expect{})
	must(t, err)

	a, err := imagestest.Access(ctx)
	must(t, err)
	del := httptest.NewRequestWithContext(a.AsCaller(ctx), http.MethodDelete, "/v1/"+a.Account+"/glance_segments/"+img.ID+"/00000002", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, del)
	if w.Code != http.StatusNoContent {
		t.Fatalf("deleting a segment: status %d", w.Code)
	}
	for _, offset := range []int64{0, 10, imagestest.ChunkSize + 1} {
		_, r, err := svc.Download(ctx, alice, img.ID)
		must(t, err)
		_, err = r.Seek(offset, io.SeekStart)
		must(t, err)
		got, err := io.ReadAll(r)
		r.Close()
		if err == nil {
			t.Errorf("from byte %d: read %d bytes and no error, want an error", offset, len(got))
		}
		if !bytes.HasPrefix(data[offset:], got) {
			t.Errorf("from byte %d: read bytes that are not the image's", offset)
		}
	}
	// The image's other pieces still go with it.
	must(t, svc.Delete(ctx, alice, img.ID))
	if left := st.Stored(t); len(left) != 0 {
		t.Errorf("after the delete, left %v", left)
	}
}
