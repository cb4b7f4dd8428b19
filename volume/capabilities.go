package volume

import (
	"strings"

	"github.com/trustack/trustack"
)

// capabilities are what every trustack backend reports of itself to the
// extra specs of volume types, as Cinder's drivers report theirs to its
// capabilities filter: its vendor and the protocol compute hosts reach
// its volumes with (NBD, see the nbd package).
var capabilities = map[string]string{"vendor_name": "trustack", "storage_protocol": "nbd"}

// offers reports whether a backend has the capabilities a type's extra
// specs ask for (every trustack backend reports the same ones today), bare or scoped ("capabilities:storage_protocol"), as
// Cinder's capabilities filter compares them: a value (any case),
// "<in> part", "<or> a <or> b", "s== value" or "s!= value". Other extra
// specs are for the backend (volume_backend_name is placement's own
// test), so a type naming a vendor or protocol no backend has makes
// volumes no backend takes, which go to error.
func offers(vt *trustack.VolumeType, b trustack.StorageBackend) bool {
	for key, want := range vt.ExtraSpecs {
		have, ok := capabilities[strings.TrimPrefix(key, "capabilities:")]
		if ok && !matches(have, want) {
			return false
		}
	}
	return true
}

// matches compares a capability with what an extra spec asks of it.
func matches(have, want string) bool {
	words := strings.Fields(want)
	if len(words) < 2 {
		return strings.EqualFold(have, strings.TrimSpace(want))
	}
	switch words[0] {
	case "<in>":
		return strings.Contains(have, strings.Join(words[1:], " "))
	case "<or>":
		for i := 1; i < len(words); i += 2 {
			if words[i] == have {
				return true
			}
		}
		return false
	case "s==":
		return have == strings.Join(words[1:], " ")
	case "s!=":
		return have != strings.Join(words[1:], " ")
	}
	return strings.EqualFold(have, strings.TrimSpace(want))
}
