"""The lead and sales-funnel core: contacts without duplicates, companies, leads with their marketing
source, pipelines and deals, tasks, offers, templates and campaigns."""
