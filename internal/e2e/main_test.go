package e2e_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/authsvc/authsvc/internal/e2e"
)

// bin is the authsvc binary built once for this package's tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "authsvc-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin, err = e2e.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
