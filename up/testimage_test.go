package up

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestFindTestImage(t *testing.T) {
	dir := t.TempDir()
	for _, name := range testGuestFiles[:2] {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, looked := findTestImage(dir); got != "" || !slices.Equal(looked, []string{dir}) {
		t.Errorf("a directory without %s: found %q, looked in %q; want nothing found, looked there only", testGuestFiles[2], got, looked)
	}
	if err := os.WriteFile(filepath.Join(dir, testGuestFiles[2]), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := findTestImage(dir); got != dir {
		t.Errorf("the whole guest in %s: found %q", dir, got)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	want := []string{"build/test-image", filepath.Join(filepath.Dir(filepath.Dir(exe)), "build/test-image")}
	if got, looked := findTestImage("build/test-image"); got != "" || !slices.Equal(looked, want) {
		t.Errorf("a relative directory, from elsewhere: found %q, looked in %q; want nothing, looked in %q", got, looked, want)
	}
}
