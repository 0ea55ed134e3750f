package devserver

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	pgplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	"go.temporal.io/server/tools/common/schema"
	sqltool "go.temporal.io/server/tools/sql"
)

// Postgres puts the server's stores in PostgreSQL, the store of a
// production Temporal cluster, instead of SQLite. The databases are created
// and their schemas set up or upgraded to this server version, the way the
// temporal-sql-tool does it.
type Postgres struct {
	// Addr is host:port of the PostgreSQL server.
	Addr     string
	User     string
	Password string
	// Database holds the history; VisibilityDatabase the run list.
	Database, VisibilityDatabase string
}

const (
	postgresTemporalSchema   = "postgresql/v12/temporal"
	postgresVisibilitySchema = "postgresql/v12/visibility"
	postgresAdminDatabase    = "postgres"
)

func (p *Postgres) sqlConfig(database string) *config.SQL {
	return &config.SQL{
		PluginName:      pgplugin.PluginName,
		ConnectAddr:     p.Addr,
		ConnectProtocol: "tcp",
		User:            p.User,
		Password:        p.Password,
		DatabaseName:    database,
		MaxConns:        20,
		MaxIdleConns:    20,
	}
}

// postgresConfigs creates (when missing) and upgrades the two databases
// and the namespace, and returns their store configs.
func (o Options) postgresConfigs() (main, visibility *config.SQL, err error) {
	p := o.Postgres
	if p.Database == "" || p.VisibilityDatabase == "" || p.Database == p.VisibilityDatabase {
		return nil, nil, errors.New("postgres: Database and VisibilityDatabase must be set and differ")
	}
	logger := log.NewNoopLogger()
	for db, schemaName := range map[string]string{p.Database: postgresTemporalSchema, p.VisibilityDatabase: postgresVisibilitySchema} {
		if err := sqltool.DoCreateDatabase(p.sqlConfig(db), postgresAdminDatabase, logger); err != nil && !isDuplicateDatabase(err) {
			return nil, nil, fmt.Errorf("postgres: creating database %s on %s: %w", db, p.Addr, err)
		}
		if err := upgradeSchema(p.sqlConfig(db), schemaName, logger); err != nil {
			return nil, nil, fmt.Errorf("postgres: schema of %s: %w", db, err)
		}
	}
	main, visibility = p.sqlConfig(p.Database), p.sqlConfig(p.VisibilityDatabase)
	// The namespace row is the same on every SQL store: written before the
	// server starts, it is there from the first request on.
	return main, visibility, o.createNamespace(main)
}

// upgradeSchema sets up the schema version tables of an empty database
// (version 0.0) and applies every versioned change up to this server's.
func upgradeSchema(cfg *config.SQL, schemaName string, logger log.Logger) error {
	conn, err := sqltool.NewConnection(cfg, logger)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ReadSchemaVersion(); err != nil {
		// No version table yet: a new database.
		if err := schema.NewSetupSchemaTask(conn, &schema.SetupConfig{InitialVersion: "0.0"}, logger).Run(); err != nil {
			return fmt.Errorf("setting up: %w", err)
		}
	}
	if err := schema.NewUpdateSchemaTask(conn, &schema.UpdateConfig{DBName: cfg.DatabaseName, SchemaName: schemaName}, logger).Run(); err != nil {
		return fmt.Errorf("updating: %w", err)
	}
	return nil
}

func isDuplicateDatabase(err error) bool {
	return strings.Contains(err.Error(), "already exists") || strings.Contains(err.Error(), "42P04")
}

// PostgresReachable says whether something answers on addr (host:port),
// for tests that skip without a PostgreSQL server.
func PostgresReachable(addr string) bool {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Drop removes both databases (tests clean up with it). The server using
// them must be stopped first.
func (p *Postgres) Drop() error {
	var errs []error
	for _, db := range []string{p.Database, p.VisibilityDatabase} {
		if err := sqltool.DoDropDatabase(p.sqlConfig(db), postgresAdminDatabase, log.NewNoopLogger()); err != nil {
			errs = append(errs, fmt.Errorf("dropping %s: %w", db, err))
		}
	}
	return errors.Join(errs...)
}
