package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/tidemark/tidemark/server"
	"github.com/tidemark/tidemark/state"
)

// adminCmd manages organizations and tokens directly in the state database
// (SQLite in a data directory, or PostgreSQL), whether or not a server is
// running on it.
type adminCmd struct {
	orgCreate   *kingpin.CmdClause
	orgList     *kingpin.CmdClause
	tokenCreate *kingpin.CmdClause
	tokenList   *kingpin.CmdClause
	tokenRevoke *kingpin.CmdClause

	storagePath string
	stateURL    string
	slug        string
	tokenOrg    string
	tokenScope  string
	tokenName   string
}

func newAdminCmd(app *kingpin.Application) *adminCmd {
	c := &adminCmd{}
	stateFlags := func(cmd *kingpin.CmdClause) {
		cmd.Flag("storage.path", "Data directory of the server (its SQLite state database).").Default("./data").StringVar(&c.storagePath)
		cmd.Flag("state.url", "State database of the server when it is PostgreSQL (postgres://...); empty: SQLite in --storage.path.").Default("").StringVar(&c.stateURL)
	}
	org := app.Command("org", "Manage organizations.")
	c.orgCreate = org.Command("create", "Create an organization.")
	c.orgCreate.Arg("slug", "The organization's slug: a-z, 0-9 and '-'.").Required().StringVar(&c.slug)
	stateFlags(c.orgCreate)
	c.orgList = org.Command("list", "List the organizations.")
	stateFlags(c.orgList)

	tok := app.Command("token", "Manage tokens.")
	c.tokenCreate = tok.Command("create", "Create a token and print it: the only time its value is shown (only its hash is stored).")
	c.tokenCreate.Flag("org", "Organization of the token.").Required().StringVar(&c.tokenOrg)
	enumFlag(c.tokenCreate.Flag("scope", "Scope: read, write or admin.").Required(), &c.tokenScope, "read", "write", "admin")
	c.tokenCreate.Flag("name", "A name for the token, unique in the organization, shown in errors and logs and used to revoke it; default: cli-<the first 8 characters of its hash>.").Default("").StringVar(&c.tokenName)
	stateFlags(c.tokenCreate)
	c.tokenList = tok.Command("list", "List an organization's tokens: names, scopes, sources, creation times (never a value).")
	c.tokenList.Flag("org", "Organization of the tokens.").Required().StringVar(&c.tokenOrg)
	stateFlags(c.tokenList)
	c.tokenRevoke = tok.Command("revoke", "Revoke a token by name. A running server refuses it within 10s.")
	c.tokenRevoke.Flag("org", "Organization of the token.").Required().StringVar(&c.tokenOrg)
	c.tokenRevoke.Arg("name", "The token's name (see token list).").Required().StringVar(&c.tokenName)
	stateFlags(c.tokenRevoke)
	return c
}

func (c *adminCmd) handles(cmd string) bool {
	for _, cl := range []*kingpin.CmdClause{c.orgCreate, c.orgList, c.tokenCreate, c.tokenList, c.tokenRevoke} {
		if cmd == cl.FullCommand() {
			return true
		}
	}
	return false
}

func (c *adminCmd) run(cmd string) int {
	ctx := context.Background()
	db, err := state.OpenURL(ctx, c.stateURL, filepath.Join(c.storagePath, server.StateFile))
	if err != nil {
		fmt.Fprintf(os.Stderr, "tidemark: %v\n", err)
		return exitUnavailable
	}
	defer db.Close()
	if err := c.do(ctx, cmd, db); err != nil {
		fmt.Fprintf(os.Stderr, "tidemark: %v\n", err)
		return exitRejected
	}
	return exitOK
}

func (c *adminCmd) do(ctx context.Context, cmd string, db *state.DB) error {
	switch cmd {
	case c.orgCreate.FullCommand():
		if err := db.CreateOrg(ctx, c.slug); err != nil {
			return err
		}
		fmt.Printf("created organization %s\n", c.slug)
	case c.orgList.FullCommand():
		orgs, err := db.Orgs(ctx)
		if err != nil {
			return err
		}
		for _, o := range orgs {
			fmt.Println(o)
		}
	case c.tokenCreate.FullCommand():
		token := state.NewToken()
		name := c.tokenName
		if name == "" {
			name = "cli-" + state.HashToken(token)[:8]
		}
		if err := db.AddToken(ctx, c.tokenOrg, state.Scope(c.tokenScope), name, state.SourceCLI, token); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "created token %s of organization %s, scope %s\n", name, c.tokenOrg, c.tokenScope)
		fmt.Println(token)
	case c.tokenList.FullCommand():
		toks, err := db.ListTokens(ctx, c.tokenOrg)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tSCOPE\tSOURCE\tCREATED")
		for _, t := range toks {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.Name, t.Scope, t.Source, t.CreatedAt.Format(time.RFC3339))
		}
		return w.Flush()
	case c.tokenRevoke.FullCommand():
		if err := db.RevokeToken(ctx, c.tokenOrg, c.tokenName); err != nil {
			return err
		}
		fmt.Printf("revoked token %s of organization %s\n", c.tokenName, c.tokenOrg)
	}
	return nil
}
