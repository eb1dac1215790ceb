{{
    config(
        pre_hook="set work_mem = '256MB'",
        post_hook=["{{ index_on(['customer_id'], unique=true) }}"],
    )
}}
{#- Churn features as of var('churn_cutoff_date'); the SQL lives in macros/churn_features.sql
    so Python can render it for other cutoffs. -#}

-- depends_on: {{ ref('int_as_of_date') }}
-- depends_on: {{ ref('int_identities_stitched') }}
-- depends_on: {{ ref('int_orders_rolled_up') }}
-- depends_on: {{ ref('stg_subscriptions__events') }}
-- depends_on: {{ ref('stg_subscriptions__subscriptions') }}
-- depends_on: {{ ref('stg_klaviyo__events') }}
-- depends_on: {{ ref('int_web_sessions_rolled_up') }}
-- depends_on: {{ ref('stg_helpdesk__tickets') }}

{{ churn_features_sql(churn_cutoff_sql()) }}
