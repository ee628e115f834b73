# ruff: noqa: RUF001 - Russian labels are Cyrillic on purpose
"""The vocabularies and the sales funnel a new hub starts with: what a Moldovan credit consultancy needs on
day one. Plain data (no imports of tables), read by migration 0014 and by `classifiers.seed_defaults` /
`funnel.default_pipeline`; admins change everything afterwards."""

from __future__ import annotations

from typing import Final

# (code, (ro, en, ru), children) — children only where the vocabulary is a tree (regions → localities).
Entry = tuple[str, tuple[str, str, str], tuple[tuple[str, tuple[str, str, str]], ...]]

CLASSIFIERS: Final[dict[str, tuple[Entry, ...]]] = {
    "product": (
        ("consumer", ("Credit de consum", "Consumer credit", "Потребительский кредит"), ()),
        ("mortgage", ("Credit ipotecar", "Mortgage", "Ипотека"), ()),
        ("car_loan", ("Credit auto", "Car loan", "Автокредит"), ()),
        ("refinancing", ("Refinanțare", "Refinancing", "Рефинансирование"), ()),
        ("business", ("Credit pentru afaceri", "Business loan", "Кредит для бизнеса"), ()),
    ),
    "lead_source": (
        ("website", ("Site web", "Website", "Сайт"), ()),
        ("facebook", ("Facebook", "Facebook", "Facebook"), ()),
        ("instagram", ("Instagram", "Instagram", "Instagram"), ()),
        ("google_ads", ("Google Ads", "Google Ads", "Google Ads"), ()),
        ("referral", ("Recomandare", "Referral", "Рекомендация"), ()),
        ("partner", ("Partener", "Partner", "Партнёр"), ()),
        ("walk_in", ("Vizită în oficiu", "Walk-in", "Визит в офис"), ()),
        ("phone", ("Apel telefonic", "Phone call", "Телефонный звонок"), ()),
    ),
    "loss_reason": (
        ("bank_refused", ("Refuzat de bancă", "Refused by the bank", "Отказ банка"), ()),
        (
            "better_offer",
            ("Ofertă mai bună în altă parte", "Better offer elsewhere", "Лучшее предложение"),
            (),
        ),
        ("too_expensive", ("Prea scump", "Too expensive", "Слишком дорого"), ()),
        ("no_documents", ("Lipsă documente", "Missing documents", "Нет документов"), ()),
        ("changed_mind", ("S-a răzgândit", "Changed their mind", "Передумал"), ()),
        ("unreachable", ("Nu răspunde", "Unreachable", "Не отвечает"), ()),
    ),
    "junk_reason": (
        ("spam", ("Spam", "Spam", "Спам"), ()),
        ("duplicate", ("Duplicat", "Duplicate", "Дубликат"), ()),
        ("wrong_number", ("Număr greșit", "Wrong number", "Неверный номер"), ()),
        ("not_a_customer", ("Nu este client", "Not a customer", "Не клиент"), ()),
        ("test", ("Test", "Test", "Тест"), ()),
    ),
    "region": (
        (
            "chisinau",
            ("mun. Chișinău", "Chișinău municipality", "мун. Кишинёв"),
            (
                ("chisinau_city", ("Chișinău", "Chișinău", "Кишинёв")),
                ("durlesti", ("Durlești", "Durlești", "Дурлешты")),
                ("codru", ("Codru", "Codru", "Кодру")),
                ("stauceni", ("Stăuceni", "Stăuceni", "Ставчены")),
            ),
        ),
        (
            "balti",
            ("mun. Bălți", "Bălți municipality", "мун. Бельцы"),
            (
                ("balti_city", ("Bălți", "Bălți", "Бельцы")),
                ("sadovoe", ("Sadovoe", "Sadovoe", "Садовое")),
            ),
        ),
        (
            "gagauzia",
            ("UTA Găgăuzia", "Gagauzia", "АТО Гагаузия"),
            (("comrat", ("Comrat", "Comrat", "Комрат")),),
        ),
        ("cahul", ("r. Cahul", "Cahul district", "р-н Кагул"), ()),
        ("orhei", ("r. Orhei", "Orhei district", "р-н Орхей"), ()),
        ("ungheni", ("r. Ungheni", "Ungheni district", "р-н Унгень"), ()),
        ("soroca", ("r. Soroca", "Soroca district", "р-н Сорока"), ()),
        ("edinet", ("r. Edineț", "Edineț district", "р-н Единец"), ()),
        ("hincesti", ("r. Hîncești", "Hîncești district", "р-н Хынчешты"), ()),
        ("causeni", ("r. Căușeni", "Căușeni district", "р-н Каушаны"), ()),
        ("straseni", ("r. Strășeni", "Strășeni district", "р-н Страшены"), ()),
        ("ialoveni", ("r. Ialoveni", "Ialoveni district", "р-н Яловены"), ()),
        ("anenii_noi", ("r. Anenii Noi", "Anenii Noi district", "р-н Новые Анены"), ()),
        ("floresti", ("r. Florești", "Florești district", "р-н Флорешты"), ()),
        ("drochia", ("r. Drochia", "Drochia district", "р-н Дрокия"), ()),
        ("calarasi", ("r. Călărași", "Călărași district", "р-н Кэлэраш"), ()),
        ("criuleni", ("r. Criuleni", "Criuleni district", "р-н Криуляны"), ()),
        ("nisporeni", ("r. Nisporeni", "Nisporeni district", "р-н Ниспорены"), ()),
        ("ceadir_lunga", ("r. Ceadîr-Lunga", "Ceadîr-Lunga district", "р-н Чадыр-Лунга"), ()),
    ),
    "segment": (
        ("employee", ("Salariat", "Employee", "Наёмный работник"), ()),
        ("entrepreneur", ("Antreprenor", "Entrepreneur", "Предприниматель"), ()),
        ("pensioner", ("Pensionar", "Pensioner", "Пенсионер"), ()),
        ("migrant", ("Lucrător migrant", "Migrant worker", "Трудовой мигрант"), ()),
        ("sme", ("Întreprindere mică", "Small business", "Малый бизнес"), ()),
    ),
    "industry": (
        ("retail", ("Comerț", "Retail", "Торговля"), ()),
        ("agriculture", ("Agricultură", "Agriculture", "Сельское хозяйство"), ()),
        ("construction", ("Construcții", "Construction", "Строительство"), ()),
        ("it", ("IT", "IT", "ИТ"), ()),
        ("transport", ("Transport", "Transport", "Транспорт"), ()),
        ("services", ("Servicii", "Services", "Услуги"), ()),
        ("manufacturing", ("Producție", "Manufacturing", "Производство"), ()),
    ),
}

KINDS: Final[tuple[str, ...]] = tuple(CLASSIFIERS)

DEFAULT_PIPELINE: Final[str] = "Credit"
# (name, win probability %, kind)
DEFAULT_STAGES: Final[tuple[tuple[str, int, str], ...]] = (
    ("New application", 10, "open"),
    ("Documents", 30, "open"),
    ("Bank review", 60, "open"),
    ("Approved", 80, "open"),
    ("Won", 100, "won"),
    ("Lost", 0, "lost"),
)

# The scoring rules a new hub starts with (crm_core.scoring; seeded by migration 0017): what makes a lead
# worth calling first at a credit consultancy. (name msgid, kind, params, points) — admins change them all.
SCORING_RULES: Final[tuple[tuple[str, str, dict[str, object], int], ...]] = (
    ("Asks for a mortgage", "product", {"values": ["mortgage"]}, 20),
    ("Asks for a business or car loan", "product", {"values": ["business", "car_loan"]}, 15),
    ("Asks for consumer credit or refinancing", "product", {"values": ["consumer", "refinancing"]}, 10),
    ("Amount of 50 000 MDL or more", "amount", {"min": "50000", "max": None, "currency": "MDL"}, 10),
    ("Amount of 250 000 MDL or more", "amount", {"min": "250000", "max": None, "currency": "MDL"}, 10),
    ("Amount under 5 000 MDL", "amount", {"min": None, "max": "4999.99", "currency": "MDL"}, -10),
    ("Term of 12 to 60 months", "term", {"min": 12, "max": 60}, 5),
    ("Called us or wrote from the website", "source_channel", {"values": ["phone", "webchat"]}, 5),
    ("Came by recommendation or from a partner", "utm_source", {"values": ["referral", "partner"]}, 10),
    ("Came from Google Ads", "utm_source", {"values": ["google", "google_ads"]}, 5),
    ("Phone number known", "completeness", {"item": "phone"}, 10),
    ("E-mail known", "completeness", {"item": "email"}, 5),
    ("IDNP known", "completeness", {"item": "idnp"}, 15),
    ("Birth date known", "completeness", {"item": "birth_date"}, 5),
    ("Replied to us", "replies", {"min": 1}, 10),
    ("Replied three times or more", "replies", {"min": 3}, 5),
    ("Answered a call", "answered_calls", {"min": 1}, 15),
)
