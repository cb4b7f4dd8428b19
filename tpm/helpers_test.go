package tpm_test

import (
	"os"
	"testing"

	"github.com/trustack/trustack/tpm"
	"github.com/trustack/trustack/tpm/tpmtest"
)

// The tests run on real swtpm instances, each on a copy of one TPM
// manufactured for the run.
var factory tpmtest.Factory

func TestMain(m *testing.M) {
	code := m.Run()
	factory.Close()
	os.Exit(code)
}

// manufactured returns the local CA of the TPM manufactured for the run.
func manufactured(t testing.TB) tpm.LocalCA {
	t.Helper()
	_, ca := factory.Manufactured(t)
	return ca
}

// swtpm is one running swtpm of a test.
type swtpm struct {
	dir  string
	addr string
	ca   tpm.LocalCA
}

// startSwtpm starts an swtpm on a copy of the run's manufactured TPM, in
// the test's directory, stopped when the test ends.
func startSwtpm(t testing.TB) *swtpm {
	t.Helper()
	return startSwtpmIn(t, factory.Copy(t), manufactured(t))
}

// startSwtpmIn starts an swtpm on the TPM manufactured in dir.
func startSwtpmIn(t testing.TB, dir string, ca tpm.LocalCA) *swtpm {
	t.Helper()
	return &swtpm{dir: dir, addr: tpmtest.Start(t, dir), ca: ca}
}

// open opens the swtpm, closed when the test ends.
func (s *swtpm) open(t testing.TB) *tpm.TPM {
	t.Helper()
	return tpmtest.Open(t, s.addr)
}

// openTPM starts an swtpm for the test and opens it.
func openTPM(t testing.TB) *tpm.TPM {
	t.Helper()
	return startSwtpm(t).open(t)
}

func createAK(t testing.TB, tp *tpm.TPM) *tpm.AK {
	t.Helper()
	ak, err := tp.CreateAK()
	if err != nil {
		t.Fatalf("CreateAK: %v", err)
	}
	return ak
}
