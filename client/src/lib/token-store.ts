import { ref, watch, type Ref } from 'vue';

const KEY = 'menagerie.token';

/** The bearer token for write actions, kept in localStorage across reloads. */
export function createTokenStore(storage: Storage = window.localStorage): Ref<string> {
  const token = ref(storage.getItem(KEY) ?? '');
  watch(token, (value) => {
    if (value) storage.setItem(KEY, value);
    else storage.removeItem(KEY);
  });
  return token;
}
