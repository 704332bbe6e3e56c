package storage

import (
	"fmt"
	"regexp"
)

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidSlug reports whether s is a valid organization slug. A valid slug is
// also a safe directory name: it can never escape the data directory.
func ValidSlug(s string) error {
	if !slugRE.MatchString(s) {
		return fmt.Errorf("organization slug %q is not accepted: use 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit", s)
	}
	return nil
}
