"""Every Russian sentence the bot says, in one place so wording stays consistent."""

from __future__ import annotations

START = (
    "Привет! Я пишу короткие анекдоты.\n"
    "Пришли мне слово или короткую фразу — и я сочиню анекдот, который с неё начинается.\n\n"
    "Сейчас пишет: {method}. Выбрать другой способ можно кнопками ниже."
)

HELP = (
    "Как пользоваться:\n"
    "• пришли слово или фразу до {max_words} слов — например, «Молоко» — и получишь анекдот;\n"
    "• 👍/👎 под анекдотом — оценка, 🔁 Ещё — ещё один на то же слово, ⚙️ — выбор модели;\n"
    "• 👍 — это «нравится»: все анекдоты с твоим 👍 собраны в /liked;\n"
    "• 📤 Поделиться — отправить анекдот в другой чат;\n"
    "• в любом чате набери моё имя через @ и слово — и выбери анекдот из трёх.\n\n"
    "Команды:\n"
    "/start — приветствие\n"
    "/help — эта справка\n"
    "/method — выбрать, кто пишет анекдоты\n"
    "/top — лучшие анекдоты по оценкам\n"
    "/liked — анекдоты, которые тебе понравились\n"
    "/stats — статистика по моделям\n"
    "/joke <слово> — анекдот (удобно в группах)"
)

METHOD_PICKER = "Кто пишет анекдоты? Сейчас: {method}."
METHOD_SWITCHED = "Теперь пишет {method}"
METHOD_ALREADY = "Уже выбрано: {method}"
METHOD_UNKNOWN = "Такой модели больше нет."

VOTE_THANKS = "Спасибо!"
VOTE_REMOVED = "Оценка снята"
VOTE_FAILED = "Не получилось сохранить оценку, попробуй ещё раз чуть позже."

EMPTY_TEXT = "Пришли слово или короткую фразу — и я напишу анекдот."
TOO_LONG = "Слишком длинно: не больше {max_chars} символов и {max_words} слов. Например: «Молоко»."
NO_LETTERS = "Здесь нет ни одной буквы. Пришли слово — например, «Молоко»."
NOT_TEXT = "Я понимаю только текст. Пришли слово — например, «Молоко»."
UNKNOWN_COMMAND = "Не знаю такой команды. Список команд — /help."
JOKE_USAGE = "Напиши слово после команды, например: /joke Молоко"

BUSY = "Сейчас очень много желающих посмеяться. Попробуй ещё раз через минутку."
ALREADY_WRITING = "Уже пишу…"
TOO_FAST = "Не так быстро 🙂 Подожди секунду."
GENERATION_FAILED = "Извини, анекдот не сложился. Попробуй ещё раз."
SAVE_FAILED = "Анекдот сочинился, но не сохранился. Попробуй ещё раз чуть позже."
RESTARTING = "Я перезапускаюсь и не успел дописать. Пришли слово ещё раз через минутку."
SOMETHING_WRONG = "Что-то пошло не так. Попробуй ещё раз чуть позже."
DATABASE_BUSY = "База анекдотов сейчас недоступна. Попробуй ещё раз через минуту."
NOT_YOUR_CHAT = "Оценивать этот анекдот может только тот, кому он написан."
NO_METHODS = "Модели ещё не загрузились, попробуй чуть позже."

# «📚 Из сборника» (the classic method, bot/classic.py): real jokes, not generated ones.
CLASSIC_LABEL = "📚 Из сборника: настоящий анекдот, его не сочинила модель."
CLASSIC_NOTHING = (
    "В сборнике нет анекдота про «{prompt}». Можно попросить модель сочинить его, выбрать "
    "другой способ или прислать другое слово — например, «Кот»."
)
CLASSIC_WRITE = "✍️ Сочинить: {method}"
CLASSIC_PICK = "⚙️ Выбрать способ"

STALE_BUTTON = "Эта кнопка устарела."
NOT_FOUND = "Анекдот не найден."

LIKED_HEADER = "Тебе понравилось ({count}) — стр. {page}/{pages}:"
LIKED_ITEM = "{place}. {text}\n👍 {likes} 👎 {dislikes}"
LIKED_EMPTY = (
    "Здесь будут анекдоты, которым ты поставишь 👍. Пока пусто — пришли слово, например "
    "«Молоко», и оцени, что получится."
)
LIKED_PAGE_GONE = "Список изменился — вот последняя страница."
LIKED_NOT_YOURS = "Это чужой список. Свой можно открыть командой /liked."
SHARED_NOT_FOUND = "Этого анекдота больше нет. Зато можно сочинить новый!"
SHARED_BAD_LINK = "Не понял ссылку: она ни на какой анекдот не ведёт. Зато можно сочинить новый!"

TOP_HEADER = "Лучшие анекдоты по оценкам:"
TOP_EMPTY = "Пока никто ничего не оценил. Будь первым!"
TOP_ITEM = "{place}. {text}\n👍 {likes} 👎 {dislikes} · {method}"

STATS_HEADER = "Статистика по моделям:"
STATS_EMPTY = "Пока нет ни одного анекдота."
STATS_ITEM = "{method}: анекдотов {jokes}, оценок {votes}, нравится {ratio}"
STATS_INTERVAL = "{ratio} (95%: {low}–{high})"
STATS_VERSION = "  · {version}{arm}: анекдотов {jokes}, оценок {votes}, нравится {ratio}"
STATS_ONE_VERSION = "  версия {version}{arm}"
STATS_ARM_MARK = " ({arm})"
STATS_EXPERIMENT = "Эксперимент «{method}»: A — {a}, B — {b}."
STATS_EXPERIMENT_ARM = "{arm}: анекдотов {jokes}, оценок {votes}, нравится {ratio}"
EXPERIMENT_TOO_EARLY = "Сравнивать рано: оценки есть ещё не у обеих версий."
EXPERIMENT_TIE = "A и B пока вровень."
EXPERIMENT_LEADS_OVERLAP = "{arm} впереди, но интервалы ещё пересекаются."
EXPERIMENT_LEADS_APART = "{arm} впереди, и интервалы уже не пересекаются."
EXPERIMENT_NOT_LOADED = "ещё не загружена"
CHART_BUTTON = "📈 График по дням"
CHART_CAPTION = "Доля 👍 по моделям и версиям, накопительно по дням; полоса — 95% интервал."
CHART_EMPTY = "Пока нет ни одной оценки — рисовать нечего."
TOP_METHOD_HEADER = "Лучшие анекдоты ({method}):"
TOP_UNKNOWN_METHOD = "Нет такой модели. Можно так: {examples}"

ADMIN_RELOADED = "Готово."
ADMIN_RELOAD_REPORT = (
    "Готово. Модели: {methods}. Генераций в очереди: {pending}. Ошибок обработки: {errors}.\n"
    "Выбор анекдотов: {selection}."
)
ADMIN_EXPORT_EMPTY = "Оценённых анекдотов пока нет."
ADMIN_EXPORT_HEADER = "Выгрузка: {count} оценённых анекдотов, JSONL ниже."
ADMIN_EXPORT_TRUNCATED = (
    "Показаны первые {chunks} сообщений; полностью — python -m storage.export на сервере."
)

# Inline mode (`@bot Молоко` in any chat): results' titles and the hints shown instead of jokes.
INLINE_RESULT_TITLE = "{method} · вариант {place}"
INLINE_SHARED_TITLE = "Поделиться анекдотом · {method}"
INLINE_HINT_MESSAGE = "Я сочиняю короткие анекдоты. Набери @{bot} и слово — например: @{bot} Молоко"
INLINE_EMPTY = "Напиши слово — сочиню анекдот"
INLINE_EMPTY_DESCRIPTION = "Например: @{bot} Молоко"
INLINE_TOO_LONG = "Слишком длинно"
INLINE_NO_LETTERS = "Нужно слово"
INLINE_MARKUP = "Только слово, без разметки"
INLINE_MARKUP_DESCRIPTION = "Теги и HTML не нужны. Например: Молоко"
INLINE_BUSY = "Сейчас много желающих посмеяться"
INLINE_BUSY_DESCRIPTION = "Добавь пробел к запросу через минутку — сочиню."
INLINE_RETRY = "Добавь пробел к запросу через секунду — покажу анекдоты."
INLINE_FAILED = "Анекдот не сложился"
INLINE_SAVE_FAILED = "Анекдот сочинился, но не сохранился"
INLINE_NOT_FOUND = "Такого анекдота нет"
INLINE_NOT_FOUND_DESCRIPTION = "Зато можно сочинить новый: напиши слово."
