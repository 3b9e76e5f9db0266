import { costLimitPlugin } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesPlugin } from '@escape.tech/graphql-armor-max-directives';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { type GraphQLError, NoSchemaIntrospectionCustomRule, type ValidationContext } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Config } from '../config.ts';

/** Deeper than any real query of this schema (introspection, bounded by the schema itself, is exempt). */
const MAX_QUERY_DEPTH = 10;

/** Report as a validation error (HTTP 400, code GRAPHQL_VALIDATION_FAILED) instead of throwing. */
const asValidationError = {
  propagateOnRejection: false,
  onReject: [(context: ValidationContext | null, error: GraphQLError) => context?.reportError(error)],
};

/**
 * The size limits every operation passes, over HTTP and WebSocket alike (both validate through Yoga's
 * envelop): depth, aliases, directives and estimated cost as validation errors; tokens while parsing, as
 * a parse error (the document is refused before it is even built), and introspection when turned off.
 */
export function graphqlLimits(config: Config): Plugin[] {
  const plugins: Plugin[] = [
    maxTokensPlugin({ n: config.MAX_TOKENS }),
    maxDepthPlugin({ n: MAX_QUERY_DEPTH, ...asValidationError }),
    maxAliasesPlugin({ n: config.MAX_ALIASES, ...asValidationError }),
    maxDirectivesPlugin({ n: config.MAX_DIRECTIVES, ...asValidationError }),
    costLimitPlugin({ maxCost: config.MAX_COST, ...asValidationError }),
  ];
  if (!config.INTROSPECTION) {
    plugins.push({ onValidate: ({ addValidationRule }) => addValidationRule(NoSchemaIntrospectionCustomRule) });
  }
  return plugins;
}
