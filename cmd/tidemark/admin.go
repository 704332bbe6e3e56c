package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/alecthomas/kingpin/v2"

	"github.com/tidemark/tidemark/server"
	"github.com/tidemark/tidemark/state"
)

// adminCmd manages organizations and tokens directly in a data directory,
// whether or not a server is running on it.
type adminCmd struct {
	orgCreate   *kingpin.CmdClause
	tokenCreate *kingpin.CmdClause

	storagePath string
	slug        string
	tokenOrg    string
	tokenScope  string
	tokenName   string
}

func newAdminCmd(app *kingpin.Application) *adminCmd {
	c := &adminCmd{}
	org := app.Command("org", "Manage organizations.")
	c.orgCreate = org.Command("create", "Create an organization.")
	c.orgCreate.Arg("slug", "The organization's slug: a-z, 0-9 and '-'.").Required().StringVar(&c.slug)
	c.orgCreate.Flag("storage.path", "Data directory of the server.").Default("./data").StringVar(&c.storagePath)

	tok := app.Command("token", "Manage tokens.")
	c.tokenCreate = tok.Command("create", "Create a token and print it (only its hash is stored).")
	c.tokenCreate.Flag("org", "Organization of the token.").Required().StringVar(&c.tokenOrg)
	c.tokenCreate.Flag("scope", "Scope: read, write or admin.").Required().EnumVar(&c.tokenScope, "read", "write", "admin")
	c.tokenCreate.Flag("name", "A name for the token, shown in errors and logs.").Default("cli").StringVar(&c.tokenName)
	c.tokenCreate.Flag("storage.path", "Data directory of the server.").Default("./data").StringVar(&c.storagePath)
	return c
}

func (c *adminCmd) handles(cmd string) bool {
	return cmd == c.orgCreate.FullCommand() || cmd == c.tokenCreate.FullCommand()
}

func (c *adminCmd) run(cmd string) int {
	db, err := state.Open(filepath.Join(c.storagePath, server.StateFile))
	if err != nil {
		fmt.Fprintf(os.Stderr, "tidemark: %v\n", err)
		return exitUnavailable
	}
	defer db.Close()
	ctx := context.Background()
	switch cmd {
	case c.orgCreate.FullCommand():
		if err := db.CreateOrg(ctx, c.slug); err != nil {
			fmt.Fprintf(os.Stderr, "tidemark: %v\n", err)
			return exitRejected
		}
		fmt.Printf("created organization %s\n", c.slug)
	case c.tokenCreate.FullCommand():
		token := state.NewToken()
		if err := db.AddToken(ctx, c.tokenOrg, state.Scope(c.tokenScope), c.tokenName, state.SourceCLI, token); err != nil {
			fmt.Fprintf(os.Stderr, "tidemark: %v\n", err)
			return exitRejected
		}
		fmt.Println(token)
	}
	return exitOK
}
