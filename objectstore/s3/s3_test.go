package s3_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/objectstore"
	"github.com/trustack/trustack/objectstore/proxy"
	s3api "github.com/trustack/trustack/objectstore/s3"
	"github.com/trustack/trustack/objectstore/storage"
)

// keys are the test's EC2 credentials: access key to secret and token.
type keys map[string]struct {
	secret string
	tok    *trustack.Token
}

func (k keys) EC2Credential(_ context.Context, access string) (string, *trustack.Token, error) {
	c, ok := k[access]
	if !ok {
		return "", nil, trustack.Errorf(trustack.EUNAUTHORIZED, "no EC2 credential %s", access)
	}
	return c.secret, c.tok, nil
}

var testKeys = keys{
	"MEMBER": {"member-secret", &trustack.Token{User: trustack.User{ID: "u1"}, Project: &trustack.Project{ID: "p1", Name: "demo"}, Roles: []trustack.Role{{Name: "member"}}}},
	"READER": {"reader-secret", &trustack.Token{User: trustack.User{ID: "u2"}, Project: &trustack.Project{ID: "p1", Name: "demo"}, Roles: []trustack.Role{{Name: "reader"}}}},
}

type noTokens struct{}

func (noTokens) Validate(context.Context, string) (*trustack.Token, error) {
	return nil, trustack.Errorf(trustack.EUNAUTHORIZED, "no tokens here")
}

// env is a local cluster with the S3 API in front: srv at the right
// time, skewed with a clock 20 minutes ahead.
type env struct {
	srv, skewed *httptest.Server
}

// newEnv starts four storage nodes (three replicas), a proxy and two S3
// servers on it.
func newEnv(t *testing.T) *env {
	t.Helper()
	cfg := storage.Config{Hasher: objectstore.Hasher{Prefix: "pre", Suffix: "suf"}, Key: "backend key", UpdaterInterval: 50 * time.Millisecond}
	var run []*storage.Node
	t.Cleanup(func() {
		for _, n := range run {
			n.Close()
		}
	})
	var dir string
	for attempt := 1; len(run) == 0; attempt++ {
		dir = t.TempDir()
		nodes, err := storage.Local(dir, filepath.Join(dir, "rings"), 4, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			node, err := storage.Start(n)
			if err != nil {
				for _, started := range run {
					started.Close()
				}
				run = nil
				if attempt < 3 && strings.Contains(err.Error(), "address already in use") {
					break
				}
				t.Fatal(err)
			}
			run = append(run, node)
		}
	}
	rings, err := storage.LoadRings(filepath.Join(dir, "rings"))
	if err != nil {
		t.Fatal(err)
	}
	p := proxy.New(rings, noTokens{}, proxy.Options{Key: cfg.Key, Hasher: cfg.Hasher, NodeTimeout: 2 * time.Second, InfoTTL: time.Millisecond})
	e := &env{
		srv:    httptest.NewServer(s3api.New(p, testKeys, s3api.Options{})),
		skewed: httptest.NewServer(s3api.New(p, testKeys, s3api.Options{Now: func() time.Time { return time.Now().Add(20 * time.Minute) }})),
	}
	t.Cleanup(e.srv.Close)
	t.Cleanup(e.skewed.Close)
	return e
}

// client is an SDK client of srv with access key's credentials (and
// secret if not "", else the right one), sending checksums only where
// S3 requires them unless trailers.
func client(srv *httptest.Server, access, secret string, trailers bool) *s3.Client {
	if secret == "" {
		secret = testKeys[access].secret
	}
	calc := aws.RequestChecksumCalculationWhenRequired
	if trailers {
		calc = aws.RequestChecksumCalculationWhenSupported
	}
	return s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
		Credentials:                credentials.NewStaticCredentialsProvider(access, secret, ""),
		RequestChecksumCalculation: calc,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RetryMaxAttempts:           1,
	})
}

// wantCode fails unless err is the S3 error code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got error %v, want %s", err, code)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("got error code %s (%v), want %s", ae.ErrorCode(), err, code)
	}
}

func mustPut(t *testing.T, c *s3.Client, bucket, key, body string) {
	t.Helper()
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(body)}); err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
}

func getBody(t *testing.T, c *s3.Client, in *s3.GetObjectInput) (*s3.GetObjectOutput, string) {
	t.Helper()
	out, err := c.GetObject(context.Background(), in)
	if err != nil {
		t.Fatalf("get %s: %v", *in.Key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return out, string(b)
}

func md5Hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func TestBuckets(t *testing.T) {
	e := newEnv(t)
	c := client(e.srv, "MEMBER", "", false)
	ctx := context.Background()
	for _, name := range []string{"ab", "Upper", "bad_name", "-dash", "192.168.1.1", strings.Repeat("a", 64)} {
		_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
		wantCode(t, err, "InvalidBucketName")
	}
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("one")}); err != nil {
		t.Fatal(err)
	}
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("one")})
	wantCode(t, err, "BucketAlreadyOwnedByYou")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("two.b-2"),
		CreateBucketConfiguration: &types.CreateBucketConfiguration{LocationConstraint: "us-east-1"}}); err != nil {
		t.Fatal(err)
	}
	list, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range list.Buckets {
		names = append(names, *b.Name)
	}
	if fmt.Sprint(names) != "[one two.b-2]" {
		t.Errorf("got buckets %v, want [one two.b-2]", names)
	}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("one")}); err != nil {
		t.Errorf("head bucket: %v", err)
	}
	_, err = c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("nope")})
	wantCode(t, err, "NotFound")
	loc, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String("one")})
	if err != nil || loc.LocationConstraint != "" {
		t.Errorf("got location %q, %v; want empty (us-east-1)", loc.LocationConstraint, err)
	}
	mustPut(t, c, "one", "k", "v")
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("one")})
	wantCode(t, err, "BucketNotEmpty")
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("nope"), Key: aws.String("k")})
	wantCode(t, err, "NoSuchBucket")
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("one"), Key: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("one")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("one")})
	wantCode(t, err, "NoSuchBucket")
}

func TestObjects(t *testing.T) {
	e := newEnv(t)
	c := client(e.srv, "MEMBER", "", false)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bkt")}); err != nil {
		t.Fatal(err)
	}
	body := "hello, object store"
	key := "dir/a key+with spaces&ü"
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: &key, Body: strings.NewReader(body),
		ContentType: aws.String("text/plain"), Metadata: map[string]string{"color": "blue"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `"` + md5Hex([]byte(body)) + `"`; *put.ETag != want {
		t.Errorf("got ETag %s, want %s", *put.ETag, want)
	}
	got, content := getBody(t, c, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: &key})
	if content != body || *got.ContentType != "text/plain" || got.Metadata["color"] != "blue" || *got.ETag != *put.ETag || got.LastModified == nil {
		t.Errorf("got %q type %v meta %v etag %v, want what was put", content, *got.ContentType, got.Metadata, *got.ETag)
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: &key})
	if err != nil || *head.ContentLength != int64(len(body)) || head.Metadata["color"] != "blue" {
		t.Errorf("head: %v %+v", err, head)
	}
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("missing")})
	wantCode(t, err, "NotFound")
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("missing")})
	wantCode(t, err, "NoSuchKey")

	t.Run("range", func(t *testing.T) {
		got, content := getBody(t, c, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: &key, Range: aws.String("bytes=7-11")})
		if content != "objec" || *got.ContentRange != fmt.Sprintf("bytes 7-11/%d", len(body)) {
			t.Errorf("got %q %v, want objec", content, *got.ContentRange)
		}
		_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: &key, Range: aws.String("bytes=100-200")})
		wantCode(t, err, "InvalidRange")
	})
	t.Run("conditions", func(t *testing.T) {
		past, future := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		for _, tc := range []struct {
			name string
			in   s3.GetObjectInput
			code string
		}{
			{"if-match", s3.GetObjectInput{IfMatch: put.ETag}, ""},
			{"if-match other", s3.GetObjectInput{IfMatch: aws.String(`"0123"`)}, "PreconditionFailed"},
			{"if-none-match", s3.GetObjectInput{IfNoneMatch: put.ETag}, "NotModified"},
			{"if-none-match other", s3.GetObjectInput{IfNoneMatch: aws.String(`"0123"`)}, ""},
			{"if-modified-since future", s3.GetObjectInput{IfModifiedSince: &future}, "NotModified"},
			{"if-modified-since past", s3.GetObjectInput{IfModifiedSince: &past}, ""},
			{"if-unmodified-since past", s3.GetObjectInput{IfUnmodifiedSince: &past}, "PreconditionFailed"},
			{"if-match wins over if-unmodified-since", s3.GetObjectInput{IfMatch: put.ETag, IfUnmodifiedSince: &past}, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				in := tc.in
				in.Bucket, in.Key = aws.String("bkt"), &key
				out, err := c.GetObject(ctx, &in)
				if tc.code == "" {
					if err != nil {
						t.Fatalf("got %v, want the object", err)
					}
					out.Body.Close()
					return
				}
				wantCode(t, err, tc.code)
			})
		}
	})
	t.Run("response overrides", func(t *testing.T) {
		got, _ := getBody(t, c, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: &key,
			ResponseContentType: aws.String("application/x-test"), ResponseContentDisposition: aws.String("attachment")})
		if *got.ContentType != "application/x-test" || *got.ContentDisposition != "attachment" {
			t.Errorf("got %s, %s; want the overrides", *got.ContentType, *got.ContentDisposition)
		}
	})
	t.Run("content-md5", func(t *testing.T) {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("md5"), Body: strings.NewReader("data"),
			ContentMD5: aws.String("XrY7u+Ae7tCTyyK7j1rNww==")}) // of "hello world"
		wantCode(t, err, "BadDigest")
		_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("md5")})
		wantCode(t, err, "NotFound")
	})
	t.Run("copy", func(t *testing.T) {
		out, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("bkt"), Key: aws.String("copy"), CopySource: aws.String("bkt/" + strings.ReplaceAll(key, " ", "%20"))})
		if err != nil {
			t.Fatal(err)
		}
		if *out.CopyObjectResult.ETag != *put.ETag {
			t.Errorf("got copy ETag %s, want %s", *out.CopyObjectResult.ETag, *put.ETag)
		}
		got, content := getBody(t, c, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("copy")})
		if content != body || got.Metadata["color"] != "blue" {
			t.Errorf("got copy %q meta %v, want the source's", content, got.Metadata)
		}
		if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("bkt"), Key: aws.String("copy"), CopySource: aws.String("bkt/copy"),
			MetadataDirective: types.MetadataDirectiveReplace, Metadata: map[string]string{"shape": "round"}}); err != nil {
			t.Fatal(err)
		}
		got, _ = getBody(t, c, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("copy")})
		if got.Metadata["shape"] != "round" || got.Metadata["color"] != "" {
			t.Errorf("got meta %v, want only shape=round", got.Metadata)
		}
		_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("bkt"), Key: aws.String("copy"), CopySource: aws.String("bkt/copy")})
		wantCode(t, err, "InvalidRequest")
	})
	t.Run("delete objects", func(t *testing.T) {
		mustPut(t, c, "bkt", "x1", "1")
		mustPut(t, c, "bkt", "x2", "2")
		out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("bkt"), Delete: &types.Delete{
			Objects: []types.ObjectIdentifier{{Key: aws.String("x1")}, {Key: aws.String("x2")}, {Key: aws.String("never")}}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Deleted) != 3 || len(out.Errors) != 0 {
			t.Errorf("got %d deleted, %d errors; want 3, 0", len(out.Deleted), len(out.Errors))
		}
		out, err = c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("bkt"), Delete: &types.Delete{Quiet: aws.Bool(true),
			Objects: []types.ObjectIdentifier{{Key: aws.String("copy")}}}})
		if err != nil || len(out.Deleted) != 0 {
			t.Errorf("quiet: got %v, %d deleted; want none listed", err, len(out.Deleted))
		}
		_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("x1")})
		wantCode(t, err, "NotFound")
	})
	t.Run("delete", func(t *testing.T) {
		for range 2 { // a missing key is deleted too
			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("bkt"), Key: &key}); err != nil {
				t.Fatal(err)
			}
		}
		_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: &key})
		wantCode(t, err, "NotFound")
	})
	t.Run("aws-chunked with checksum trailers", func(t *testing.T) {
		d := client(e.srv, "MEMBER", "", true)
		if _, err := d.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("trailer"), Body: bytes.NewReader([]byte(body))}); err != nil {
			t.Fatal(err)
		}
		_, content := getBody(t, c, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("trailer")})
		if content != body {
			t.Errorf("got %q, want %q", content, body)
		}
	})
	t.Run("long key", func(t *testing.T) {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String(strings.Repeat("k", 1025)), Body: strings.NewReader("x")})
		wantCode(t, err, "KeyTooLongError")
	})
}

func TestListings(t *testing.T) {
	e := newEnv(t)
	c := client(e.srv, "MEMBER", "", false)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("lst")}); err != nil {
		t.Fatal(err)
	}
	keys := []string{"a/1", "a/2", "b/1", "c", "d e", "f"}
	for _, k := range keys {
		mustPut(t, c, "lst", k, k)
	}
	t.Run("v2 pages", func(t *testing.T) {
		var got []string
		var token *string
		pages := 0
		for {
			out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("lst"), MaxKeys: aws.Int32(4), ContinuationToken: token})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, o := range out.Contents {
				got = append(got, *o.Key)
				if *o.ETag != `"`+md5Hex([]byte(*o.Key))+`"` || *o.Size != int64(len(*o.Key)) {
					t.Errorf("%s: got ETag %s size %d", *o.Key, *o.ETag, *o.Size)
				}
			}
			if !*out.IsTruncated {
				break
			}
			token = out.NextContinuationToken
		}
		if fmt.Sprint(got) != fmt.Sprint(keys) || pages != 2 {
			t.Errorf("got %v in %d pages, want %v in 2", got, pages, keys)
		}
	})
	t.Run("v2 delimiter", func(t *testing.T) {
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("lst"), Delimiter: aws.String("/")})
		if err != nil {
			t.Fatal(err)
		}
		var prefixes, objects []string
		for _, p := range out.CommonPrefixes {
			prefixes = append(prefixes, *p.Prefix)
		}
		for _, o := range out.Contents {
			objects = append(objects, *o.Key)
		}
		if fmt.Sprint(prefixes) != "[a/ b/]" || fmt.Sprint(objects) != "[c d e f]" || *out.KeyCount != 5 {
			t.Errorf("got prefixes %v objects %v count %d", prefixes, objects, *out.KeyCount)
		}
		out, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("lst"), Prefix: aws.String("a/"), StartAfter: aws.String("a/1")})
		if err != nil || len(out.Contents) != 1 || *out.Contents[0].Key != "a/2" {
			t.Errorf("start-after: got %v, %v; want a/2", err, out.Contents)
		}
	})
	t.Run("v1 markers across prefixes", func(t *testing.T) {
		var got []string
		marker := ""
		for {
			out, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String("lst"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(1), Marker: &marker})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range out.CommonPrefixes {
				got = append(got, *p.Prefix)
			}
			for _, o := range out.Contents {
				got = append(got, *o.Key)
			}
			if !*out.IsTruncated {
				break
			}
			marker = *out.NextMarker
		}
		if fmt.Sprint(got) != "[a/ b/ c d e f]" {
			t.Errorf("got %v, want [a/ b/ c d e f]", got)
		}
	})
	t.Run("encoding-type url", func(t *testing.T) {
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("lst"), Prefix: aws.String("d"), EncodingType: types.EncodingTypeUrl})
		if err != nil || len(out.Contents) != 1 || *out.Contents[0].Key != "d+e" {
			t.Errorf("got %v %v, want the key d+e", err, out.Contents)
		}
	})
	_, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("none")})
	wantCode(t, err, "NoSuchBucket")
}

func TestMultipart(t *testing.T) {
	e := newEnv(t)
	c := client(e.srv, "MEMBER", "", false)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("mpu")}); err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{bytes.Repeat([]byte("a"), 5<<20), bytes.Repeat([]byte("b"), 5<<20+7), []byte("the end")}
	create, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("big"),
		ContentType: aws.String("application/x-big"), Metadata: map[string]string{"size": "large"}})
	if err != nil {
		t.Fatal(err)
	}
	var completed []types.CompletedPart
	sums := md5.New()
	for i, p := range parts {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("big"), UploadId: create.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
		if err != nil {
			t.Fatal(err)
		}
		completed = append(completed, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
		s := md5.Sum(p)
		sums.Write(s[:])
	}
	wantETag := fmt.Sprintf(`"%x-3"`, sums.Sum(nil))
	listed, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("mpu"), Key: aws.String("big"), UploadId: create.UploadId})
	if err != nil || len(listed.Parts) != 3 || *listed.Parts[1].Size != int64(len(parts[1])) {
		t.Fatalf("list parts: %v %+v", err, listed)
	}
	uploads, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("mpu")})
	if err != nil || len(uploads.Uploads) != 1 || *uploads.Uploads[0].UploadId != *create.UploadId {
		t.Fatalf("list uploads: %v %+v", err, uploads)
	}
	t.Run("bad completions", func(t *testing.T) {
		complete := func(parts ...types.CompletedPart) error {
			_, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("big"),
				UploadId: create.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
			return err
		}
		wantCode(t, complete(completed[1], completed[0]), "InvalidPartOrder")
		wantCode(t, complete(completed[0], types.CompletedPart{PartNumber: aws.Int32(2), ETag: completed[0].ETag}), "InvalidPart")
		wantCode(t, complete(completed[0], types.CompletedPart{PartNumber: aws.Int32(9), ETag: completed[0].ETag}), "InvalidPart")
		wantCode(t, complete(completed[0], completed[0]), "InvalidPartOrder")
	})
	out, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("big"),
		UploadId: create.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: completed}})
	if err != nil {
		t.Fatal(err)
	}
	if *out.ETag != wantETag {
		t.Errorf("got completed ETag %s, want %s", *out.ETag, wantETag)
	}
	got, content := getBody(t, c, &s3.GetObjectInput{Bucket: aws.String("mpu"), Key: aws.String("big")})
	if content != string(bytes.Join(parts, nil)) || *got.ETag != wantETag || *got.ContentType != "application/x-big" || got.Metadata["size"] != "large" {
		t.Errorf("got %d bytes, ETag %s, type %s, meta %v; want the parts, %s", len(content), *got.ETag, *got.ContentType, got.Metadata, wantETag)
	}
	_, content = getBody(t, c, &s3.GetObjectInput{Bucket: aws.String("mpu"), Key: aws.String("big"), Range: aws.String(fmt.Sprintf("bytes=%d-", 10<<20))})
	if content != "bbbbbbbthe end" {
		t.Errorf("got range %q, want the end", content)
	}
	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("mpu")})
	if err != nil || len(list.Contents) != 1 || *list.Contents[0].ETag != wantETag || *list.Contents[0].Size != int64(len(content)+10<<20-7+7) {
		t.Errorf("listing: %v; want big with ETag %s", err, wantETag)
	}
	if out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("mpu"), Key: aws.String("big"), IfMatch: &wantETag}); err != nil {
		t.Errorf("If-Match the S3 ETag: %v", err)
	} else {
		out.Body.Close()
	}
	_, err = c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("mpu"), Key: aws.String("big"), UploadId: create.UploadId})
	wantCode(t, err, "NoSuchUpload")

	t.Run("too small and abort", func(t *testing.T) {
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("small")})
		if err != nil {
			t.Fatal(err)
		}
		var done []types.CompletedPart
		for i := range 2 {
			out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("small"), UploadId: up.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: strings.NewReader("tiny")})
			if err != nil {
				t.Fatal(err)
			}
			done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
		}
		_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("small"),
			UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
		wantCode(t, err, "EntityTooSmall")
		if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("small"), UploadId: up.UploadId}); err != nil {
			t.Fatal(err)
		}
		_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("small"), UploadId: up.UploadId,
			PartNumber: aws.Int32(3), Body: strings.NewReader("late")})
		wantCode(t, err, "NoSuchUpload")
		uploads, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("mpu")})
		if err != nil || len(uploads.Uploads) != 0 {
			t.Errorf("got %v %v, want no uploads left", err, uploads.Uploads)
		}
	})
	t.Run("delete removes the parts", func(t *testing.T) {
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("mpu"), Key: aws.String("big")}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("mpu")}); err != nil {
			t.Fatal(err)
		}
		list, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil || len(list.Buckets) != 0 {
			t.Errorf("got %v %v, want no buckets", err, list.Buckets)
		}
	})
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	c := client(e.srv, "MEMBER", "", false)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("auth")}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, c, "auth", "k", "secret data")
	absent := func(t *testing.T, key string) {
		t.Helper()
		_, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("auth"), Key: &key})
		wantCode(t, err, "NotFound")
	}

	t.Run("wrong secret", func(t *testing.T) {
		_, err := client(e.srv, "MEMBER", "wrong", false).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("auth"), Key: aws.String("w"), Body: strings.NewReader("x")})
		wantCode(t, err, "SignatureDoesNotMatch")
		absent(t, "w")
	})
	t.Run("unknown key", func(t *testing.T) {
		_, err := client(e.srv, "NOBODY", "x", false).ListBuckets(ctx, &s3.ListBucketsInput{})
		wantCode(t, err, "InvalidAccessKeyId")
	})
	t.Run("wrong region", func(t *testing.T) {
		_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{}, func(o *s3.Options) { o.Region = "eu-west-1" })
		wantCode(t, err, "AuthorizationHeaderMalformed")
	})
	t.Run("clock skew", func(t *testing.T) {
		_, err := client(e.skewed, "MEMBER", "", false).ListBuckets(ctx, &s3.ListBucketsInput{})
		wantCode(t, err, "RequestTimeTooSkewed")
	})
	t.Run("reader cannot write", func(t *testing.T) {
		r := client(e.srv, "READER", "", false)
		_, err := r.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("auth"), Key: aws.String("r"), Body: strings.NewReader("x")})
		wantCode(t, err, "AccessDenied")
		absent(t, "r")
		_, err = r.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("auth"), Key: aws.String("k")})
		wantCode(t, err, "AccessDenied")
		if _, content := getBody(t, r, &s3.GetObjectInput{Bucket: aws.String("auth"), Key: aws.String("k")}); content != "secret data" {
			t.Errorf("reader got %q, want the object", content)
		}
	})
	t.Run("sha256 mismatch", func(t *testing.T) {
		for _, size := range []int{0, 10, 200 << 10} {
			body := bytes.Repeat([]byte("z"), size)
			other := sha256.Sum256([]byte("something else"))
			key := fmt.Sprintf("mismatch-%d", size)
			req := signed(t, e.srv, http.MethodPut, "/auth/"+key, body, hex.EncodeToString(other[:]), time.Now())
			status, text := send(t, req)
			if status != http.StatusBadRequest || !strings.Contains(text, "<Code>XAmzContentSHA256Mismatch</Code>") {
				t.Errorf("size %d: got %d %s, want 400 XAmzContentSHA256Mismatch", size, status, text)
			}
			absent(t, key)
		}
	})
	t.Run("signature v2", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/", nil)
		req.Header.Set("Authorization", "AWS MEMBER:c2lnbmF0dXJl")
		status, text := send(t, req)
		if status != http.StatusNotImplemented || !strings.Contains(text, "Signature Version 4") {
			t.Errorf("got %d %s, want 501 saying to use Signature Version 4", status, text)
		}
	})
	t.Run("anonymous", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/auth/k", nil)
		status, text := send(t, req)
		if status != http.StatusForbidden || !strings.Contains(text, "<Code>AccessDenied</Code>") {
			t.Errorf("got %d %s, want 403 AccessDenied", status, text)
		}
	})

	presign := s3.NewPresignClient(c)
	t.Run("presigned get", func(t *testing.T) {
		p, err := presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("auth"), Key: aws.String("k")}, s3.WithPresignExpires(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, p.URL, nil)
		if status, text := send(t, req); status != http.StatusOK || text != "secret data" {
			t.Errorf("got %d %q, want the object", status, text)
		}
		req, _ = http.NewRequest(http.MethodGet, strings.Replace(p.URL, "/auth/k?", "/auth/other?", 1), nil)
		if status, text := send(t, req); status != http.StatusForbidden || !strings.Contains(text, "SignatureDoesNotMatch") {
			t.Errorf("tampered: got %d %s, want 403 SignatureDoesNotMatch", status, text)
		}
	})
	t.Run("presigned put", func(t *testing.T) {
		p, err := presign.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("auth"), Key: aws.String("up")}, s3.WithPresignExpires(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPut, p.URL, strings.NewReader("uploaded"))
		if status, text := send(t, req); status != http.StatusOK {
			t.Fatalf("got %d %s, want 200", status, text)
		}
		if _, content := getBody(t, c, &s3.GetObjectInput{Bucket: aws.String("auth"), Key: aws.String("up")}); content != "uploaded" {
			t.Errorf("got %q, want uploaded", content)
		}
	})
	t.Run("presigned expired", func(t *testing.T) {
		p, err := s3.NewPresignClient(client(e.skewed, "MEMBER", "", false)).PresignGetObject(ctx,
			&s3.GetObjectInput{Bucket: aws.String("auth"), Key: aws.String("k")}, s3.WithPresignExpires(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, p.URL, nil)
		if status, text := send(t, req); status != http.StatusForbidden || !strings.Contains(text, "Request has expired") {
			t.Errorf("got %d %s, want 403 Request has expired", status, text)
		}
	})
}

// signed returns a request to srv signed with the SDK's signer as
// MEMBER, with payloadHash as its x-amz-content-sha256.
func signed(t *testing.T, srv *httptest.Server, method, path string, body []byte, payloadHash string, at time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	creds := aws.Credentials{AccessKeyID: "MEMBER", SecretAccessKey: testKeys["MEMBER"].secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, payloadHash, "s3", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
	return req
}

// send makes req and returns the status and body.
func send(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("X-Amz-Request-Id") == "" {
		t.Errorf("%s %s: no x-amz-request-id", req.Method, req.URL.Path)
	}
	return resp.StatusCode, string(b)
}
