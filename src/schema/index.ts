import { builder } from './builder.ts';
import { withCheckedConnectionArgs } from './connection-args.ts';
import './types/item.ts';
import './types/rules.ts';
import './types/placement.ts';
import './types/experiment.ts';
import './types/event.ts';
import './types/recommendation.ts';
import './types/shopper.ts';
import './types/model.ts';
import './types/api-key.ts';
import './types/privacy.ts';

/** The gateway's GraphQL schema. */
export const schema = withCheckedConnectionArgs(builder.toSchema(), ['items']);
