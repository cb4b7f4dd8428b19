package compute

// MaxMinor is the newest microversion served, 2.MaxMinor.
const MaxMinor = maxMinor
