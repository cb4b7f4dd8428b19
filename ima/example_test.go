package ima_test

import (
	"crypto"
	"fmt"
	"io"
	"strings"

	"github.com/trustack/trustack/ima"
)

// A verifier reads the entries an agent sent since the last verified
// quote, resumes the replay where that quote left it, and finds how many
// of them the new quote covers.
func Example() {
	list := `10 3c93cea361cd6892bc8b9e3458e22ce60ef2e632 ima-ng sha1:ac7dd11bf0e3bec9a7eb2c01e495072962fb9dfa boot_aggregate
10 3d1452eb1fcbe51ad137f3fc21d3cf4a7c2e625b ima-ng sha1:a212d835ca43d7deedd4ee806898e77eab53dafa /usr/lib/systemd/systemd
10 e213099a2bf6d88333446c5da617e327696f9eb4 ima-ng sha1:6da34b1b7d2ca0d5ca19e68119c262556a15171d /usr/lib64/ld-2.28.so
`
	var entries []ima.Entry
	r := ima.NewASCIIReader(strings.NewReader(list))
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(e.Path, e.FileHashAlgo, e.VerifyTemplateHash() == nil)
		entries = append(entries, e)
	}

	// The quote, here computed from the first two entries: the list ran
	// ahead of it by one.
	tpm, _ := ima.NewReplayer(ima.State{}, crypto.SHA256)
	_ = tpm.Extend(&entries[0])
	_ = tpm.Extend(&entries[1])
	quoted := tpm.PCR(crypto.SHA256)

	var last ima.State // kept per host between attestations
	v, _ := ima.NewReplayer(last, crypto.SHA256)
	n, err := v.ReplayTo(entries, crypto.SHA256, quoted)
	fmt.Println(n, err, v.State().Entries)
	// Output:
	// boot_aggregate sha1 true
	// /usr/lib/systemd/systemd sha1 true
	// /usr/lib64/ld-2.28.so sha1 true
	// 2 <nil> 2
}
