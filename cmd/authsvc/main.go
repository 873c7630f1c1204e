// Command authsvc is the internal auth service in front of Wacht: it
// verifies session tokens and serves users and sessions to internal
// callers over Connect, gRPC and gRPC-Web. docs/architecture.md draws its
// parts.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at link time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "authsvc:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `usage: authsvc <command>

commands:
  serve     run the service (production)
  dev       run the service against a built-in Wacht emulator with demo data
  migrate   apply the database migrations embedded in this binary, then exit
  version   print the version

Configuration comes from the environment; see the README.`

// run is the whole program, with its inputs and outputs passed in so that
// tests can drive it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("%w: no command given", errUsage)
	}
	switch args[0] {
	case "serve":
		return serve(ctx, modeServe, getenv, stdout, stderr)
	case "dev":
		return serve(ctx, modeDev, getenv, stdout, stderr)
	case "migrate":
		return migrateCmd(ctx, getenv, stdout)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "authsvc", version)
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
}
