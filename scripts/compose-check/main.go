// Command compose-check loads a Docker Compose project the way `docker compose` does (with
// compose-go, the library Docker Compose itself is built on: schema validation, interpolation,
// merging of override files with `!reset`/`!override`, profiles, env_file and consistency
// checks) and prints the resolved project as JSON, without a Docker engine.
//
// scripts/deploy-check.sh runs it for every combination of compose files and profiles that
// docs/deploy.md promises, then checks tickflow's own rules on the output
// (scripts/validate_compose.py).
//
//	compose-check -C DIR [-f FILE]... [-p PROFILE]... [-e NAME=VALUE]...
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var files, profiles, env list
	dir := flag.String("C", ".", "project directory (where the compose files and deploy/ are)")
	flag.Var(&files, "f", "compose file, relative to -C (repeatable; default docker-compose.yml)")
	flag.Var(&profiles, "p", "profile to enable (repeatable)")
	flag.Var(&env, "e", "NAME=VALUE for interpolation (repeatable; the process environment is not used)")
	flag.Parse()
	if len(files) == 0 {
		files = list{"docker-compose.yml"}
	}
	if err := run(*dir, files, profiles, env); err != nil {
		fmt.Fprintf(os.Stderr, "compose-check: %v\n", err)
		os.Exit(1)
	}
}

func run(dir string, files, profiles, env []string) error {
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = filepath.Join(dir, f)
	}
	opts, err := cli.NewProjectOptions(paths,
		cli.WithWorkingDirectory(dir),
		cli.WithEnv(env),
		cli.WithDotEnv,
		cli.WithProfiles(profiles),
		cli.WithResolvedPaths(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		return err
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		return err
	}
	raw, err := project.MarshalJSON()
	if err != nil {
		return err
	}
	disabled := project.DisabledServiceNames()
	sort.Strings(disabled)
	out := struct {
		Files    []string        `json:"files"`
		Profiles []string        `json:"profiles"`
		Disabled []string        `json:"disabled_services"`
		Project  json.RawMessage `json:"project"`
	}{files, profiles, disabled, raw}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
