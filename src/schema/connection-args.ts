import { PothosValidationError } from '@pothos/core';
import type { GraphQLFieldResolver, GraphQLSchema } from 'graphql';
import { InvalidInputError } from '../errors.ts';
import { checkPageSize } from '../services/validation.ts';

/**
 * Gives the Relay connections' argument errors a code: Pothos checks `first`/`last` and decodes cursors
 * before our resolver runs, and throws errors without one. Page sizes are checked here first; a cursor
 * Pothos cannot decode becomes INVALID_INPUT on `after` or `before`, rule `format`.
 */
export function withCheckedConnectionArgs(schema: GraphQLSchema, queryFields: readonly string[]): GraphQLSchema {
  const fields = schema.getQueryType()?.getFields() ?? {};
  for (const name of queryFields) {
    const field = fields[name];
    if (!field?.resolve) throw new Error(`no connection field Query.${name} to guard`);
    const resolve: GraphQLFieldResolver<unknown, unknown> = field.resolve;
    field.resolve = (source, args: Record<string, unknown>, context, info) => {
      for (const size of ['first', 'last']) {
        const value = args[size];
        if (typeof value === 'number') checkPageSize(size, value);
      }
      const explain = (error: unknown) => {
        if (!(error instanceof PothosValidationError) || !/cursor/i.test(error.message)) return error;
        return new InvalidInputError(args.after != null ? 'after' : 'before', 'format', 'is not a cursor of this list');
      };
      try {
        const result: unknown = resolve(source, args, context, info);
        return result instanceof Promise
          ? result.catch((error: unknown) => {
              throw explain(error);
            })
          : result;
      } catch (error) {
        throw explain(error);
      }
    };
  }
  return schema;
}
