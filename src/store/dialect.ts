import type { ColumnDefinitionBuilder } from 'kysely';

/**
 * Everything that differs between the SQL databases we run on lives here, so repositories
 * and migrations stay portable. Only SQLite is implemented today.
 */
export interface MigrationDialect {
  readonly name: 'sqlite';
  readonly autoIncrementType: 'integer';
  autoIncrement(column: ColumnDefinitionBuilder): ColumnDefinitionBuilder;
}

export const sqliteDialect: MigrationDialect = {
  name: 'sqlite',
  autoIncrementType: 'integer',
  autoIncrement: (column) => column.primaryKey().autoIncrement(),
};
